/*
 * tu_db.c — see tu_db.h.
 */
#include "tu_db.h"

#include <criterion/criterion.h>
#include <lmdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"

void
tu_db_options(anc_db_options *o, unsigned flags, uint64_t map_size)
{
	anc_db_options_default(o);
	o->nosync = 1;
	o->quiet = 1;
	o->drift_off = (flags & TU_DB_DRIFT) == 0;
	o->calib_off = (flags & TU_DB_CALIB) == 0;
	if (map_size != 0)
		o->map_size = map_size;
}

anc_db *
tu_db_open_with(const char *dir, const anc_db_options *o)
{
	anc_db *db = NULL;
	anc_error err;

	int rv = anc_db_open(dir, o, &db, &err);
	cr_assert_eq(rv, ANC_OK, "open %s: %s", dir, err.msg);
	return db;
}

anc_db *
tu_db_open(const char *dir, unsigned flags, uint64_t map_size)
{
	anc_db_options o;

	tu_db_options(&o, flags, map_size);
	return tu_db_open_with(dir, &o);
}

void
tu_db_close(anc_db *db)
{
	anc_error err;
	int rv = anc_db_close(db, &err);
	cr_assert_eq(rv, ANC_OK, "close: %s", err.msg);
}

int
tu_db_receipts_tamper(const char *datadir, size_t divisor, uint8_t mask,
                      int all)
{
	return tu_db_tamper(datadir, "receipts", divisor, mask, all);
}

int
tu_db_tamper(const char *datadir, const char *dbname, size_t divisor,
             uint8_t mask, int all)
{
	MDB_env *env;
	MDB_txn *txn;
	MDB_dbi dbi;
	MDB_cursor *cur;
	MDB_val k, v;
	char path[TU_PATH_MAX];
	int n = 0;

	cr_assert_lt(snprintf(path, sizeof path, "%s/lmdb", datadir),
	             (int)sizeof path, "path too long");
	cr_assert_eq(mdb_env_create(&env), 0);
	cr_assert_eq(mdb_env_set_maxdbs(env, 16), 0);
	cr_assert_eq(mdb_env_set_mapsize(env, 1ull << 30), 0);
	cr_assert_eq(mdb_env_open(env, path, 0, 0644), 0);
	cr_assert_eq(mdb_txn_begin(env, NULL, 0, &txn), 0);
	cr_assert_eq(mdb_dbi_open(txn, dbname, 0, &dbi), 0);
	cr_assert_eq(mdb_cursor_open(txn, dbi, &cur), 0);
	for (int rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST);
	     rc == 0 && (all || n == 0);
	     rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
		/* v points into the map: change a copy, put it back */
		uint8_t *copy = malloc(v.mv_size);
		cr_assert_not_null(copy);
		memcpy(copy, v.mv_data, v.mv_size);
		size_t at = v.mv_size / divisor;
		copy[at < v.mv_size ? at : v.mv_size - 1] ^= mask;
		MDB_val nv = {v.mv_size, copy};
		cr_assert_eq(mdb_cursor_put(cur, &k, &nv, MDB_CURRENT), 0);
		free(copy);
		n++;
	}
	cr_assert_gt(n, 0, "no entry in %s (%s)", path, dbname);
	mdb_cursor_close(cur);
	cr_assert_eq(mdb_txn_commit(txn), 0);
	mdb_env_close(env);
	return n;
}
