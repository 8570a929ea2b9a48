"""Two-factor authentication for staff: an authenticator app and recovery codes.

Built on django-otp (its TOTP and static-token plugins). A staff member enrols from
the admin (/admin/two-factor/); from then on every admin session of theirs passes a
code before any admin page. Superusers must enrol when
QUIRE_REQUIRE_2FA_FOR_SUPERUSERS is on. The admin site enforces it (adminsite.py);
services.py holds the writes, views.py the pages.
"""
