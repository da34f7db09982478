-- What the load role's database user needs before the first run: to exist, and to
-- create the target schema (it then owns the schema and every table myshift creates in
-- it). Run as a superuser, once per target database. {user} is the stack output
-- WarehouseDatabaseUser (IAMR:<stack>-load) for a pipeline without secret_arn or
-- db_user, else the secret's user or the db_user; skip CREATE USER if the user exists
-- (database users are global to the cluster or workgroup). myshift's local engine runs
-- this very file for its pipelines.
CREATE USER "{user}" PASSWORD DISABLE;
GRANT CREATE ON DATABASE "{database}" TO "{user}";
