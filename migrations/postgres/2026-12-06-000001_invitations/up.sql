-- An invitation is an email token too: `invite` proves the address an administrator invited
-- and lets its owner choose the account's first password.
ALTER TABLE email_tokens DROP CONSTRAINT email_tokens_purpose_check;
ALTER TABLE email_tokens ADD CONSTRAINT email_tokens_purpose_check
    CHECK (purpose IN ('verify', 'change', 'cancel', 'invite'));
