/* location.c - find-or-create of region/district/village rows. */
#include "hf_base.h"
#include "location.h"
#include "hf_log.h"

#include <stdio.h>

static hf_err find_or_create(struct db *db, int64_t parent, const char *level, const char *name, const char *path,
			     int64_t *out)
{
	struct db_rows *r = NULL;
	struct db_val p[] = {db_str(path)};
	for (int attempt = 0; attempt < 2; attempt++) {
		hf_err err = db_query(db, "SELECT id FROM locations WHERE path = ?", p, 1, &r);
		if (err)
			return err;
		if (db_rows_next(r)) {
			*out = db_rows_i64(r, 0);
			db_rows_free(r);
			return HF_OK;
		}
		db_rows_free(r);
		int64_t id = db_new_id();
		struct db_val ins[] = {DB_I64(id), parent ? DB_I64(parent) : DB_NULLV, db_str(level), db_str(name),
				       db_str(path)};
		/* INSERT IGNORE: another registrar may create the same village at the same moment; then re-read. */
		uint64_t affected = 0;
		err = db_exec(db, "INSERT IGNORE INTO locations (id, parent_id, level, name, path) VALUES (?, ?, ?, ?, ?)",
			      ins, 5, &affected);
		if (err)
			return err;
		if (affected == 1) {
			*out = id;
			return HF_OK;
		}
		/* Another registrar created it at the same moment and committed. Inside a transaction our snapshot
		 * predates that row: later reads (the household joined with its village) would not see it. Retry
		 * the whole transaction (db_tx does, on HF_EDB_RETRY) with a fresh snapshot that has it. */
		if (db_in_tx(db)) {
			hf_log(HF_LOG_INFO, "core.location", "msg=\"location created concurrently; transaction retried\"");
			return HF_EDB_RETRY;
		}
	}
	return HF_ECONFLICT;
}

hf_err location_resolve(struct db *db, const char *region, const char *district, const char *village,
			int64_t *village_id_out)
{
	char path[LOCATION_PATH_MAX * 2];
	int64_t r = 0, d = 0, v = 0;
	snprintf(path, sizeof(path), "%s", region);
	hf_err err = find_or_create(db, 0, "region", region, path, &r);
	if (err)
		return err;
	snprintf(path, sizeof(path), "%s/%s", region, district);
	err = find_or_create(db, r, "district", district, path, &d);
	if (err)
		return err;
	snprintf(path, sizeof(path), "%s/%s/%s", region, district, village);
	err = find_or_create(db, d, "village", village, path, &v);
	if (err)
		return err;
	*village_id_out = v;
	return HF_OK;
}
