/* migrate.h - applies sql/NNNN_name.sql migrations in order and records them.
 *
 * Each file is applied once, in number order, by the migration account, and recorded with its SHA-256 in
 * schema_migrations. A recorded file whose content changed afterwards stops the run: history is
 * append-only, a fix is a new migration. MariaDB DDL is not transactional, so a file that fails half-way
 * is reported with its name and must be repaired by hand before re-running.
 */
#ifndef HF_CORE_MIGRATE_H
#define HF_CORE_MIGRATE_H

#include "hf_base.h"
#include "hf_err.h"
#include "db.h"

/* Applies what is missing from sql_dir; *applied_out = number of files applied now. */
HF_MUST_CHECK hf_err migrate_run(struct db *db, const char *sql_dir, int *applied_out);
/* Gives the service account app_user@each host in hosts (comma-separated) UPDATE and DELETE on every table
 * except the append-only ones (audit_log, audit_checkpoints, ledger_postings, ledger_entries), on top of
 * the SELECT and INSERT it
 * holds on the whole database (deploy/mariadb.sh init-db). Run after migrate_run as the migration account,
 * which needs GRANT OPTION. Idempotent. */
HF_MUST_CHECK hf_err migrate_grants(struct db *db, const char *app_user, const char *hosts);

#endif
