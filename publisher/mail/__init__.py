"""Mail: one message builder (MIME, DKIM, bulk headers), the SMTP and Maildir transports, transactional sending."""
