
-- A DBA (ioffice_admin) may add registers (their ids come from the sequence)
-- and keep people's names, positions, phones and e-mail addresses.
GRANT USAGE ON SEQUENCE register_id_seq TO ioffice_admin;
GRANT UPDATE (full_name, position, phone, email, active) ON person TO ioffice_admin;
