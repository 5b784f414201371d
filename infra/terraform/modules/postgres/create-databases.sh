#!/bin/sh
# Makes a role and a database for each service, both named after it, the role owning the
# database and only it allowed to connect; sets each role's password from the mounted
# secret. Run by the Job in main.tf with the master user's URL; safe to run again.
set -eu

for password_file in /run/emporium/databases/*; do
  name=$(basename "$password_file")
  password=$(cat "$password_file")
  psql "$ADMIN_URL" --no-psqlrc --quiet -v ON_ERROR_STOP=1 \
    -v name="$name" -v password="$password" <<'SQL'
SELECT format('CREATE ROLE %I LOGIN', :'name')
  WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = :'name') \gexec
ALTER ROLE :"name" WITH LOGIN PASSWORD :'password';
-- The master user creates the database for the role: it must be able to act as it.
GRANT :"name" TO CURRENT_USER;
SELECT format('CREATE DATABASE %I OWNER %I', :'name', :'name')
  WHERE NOT EXISTS (SELECT 1 FROM pg_database WHERE datname = :'name') \gexec
REVOKE ALL ON DATABASE :"name" FROM PUBLIC;
GRANT CONNECT, TEMPORARY ON DATABASE :"name" TO :"name";
SQL
  echo "database $name: ready"
done
