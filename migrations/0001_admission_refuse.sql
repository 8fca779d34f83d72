-- Aborts the statement that calls it, rolling back everything that statement wrote. Admission's single
-- statement (src/ledger/admit-hold.ts) calls it when a check fails after the idempotency key was claimed;
-- the application reads the reason from the message.
CREATE OR REPLACE FUNCTION dreambot_refuse(reason text, available bigint) RETURNS boolean
LANGUAGE plpgsql VOLATILE AS $$
BEGIN
  RAISE EXCEPTION 'dreambot_refused:%:%', reason, available USING ERRCODE = 'P0001';
END;
$$;
