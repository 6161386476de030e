/*
 * tu_db.h — an engine (anc_db) opened in a test's temporary directory the
 * way the unit tests want it: no fsync (the tests never cut the power, and
 * fsync on a shared CI disk made them minutes slower), no log lines, and
 * the background drift and calibration work off unless a test asks for it.
 *
 * Like testutil.h, a failure to open or close fails the running test, with
 * the engine's message.
 */
#ifndef ANC_TU_DB_H
#define ANC_TU_DB_H

#include <stdint.h>

#include "anc_index.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Flags of tu_db_open: which background work stays on. */
#define TU_DB_DRIFT 1u /* drift statistics (anc_db_options.drift_off = 0) */
#define TU_DB_CALIB 2u /* confidence calibration (calib_off = 0) */

/* The options tu_db_open uses: the engine's defaults, then nosync and
 * quiet, flags as above, and map_size bytes of LMDB map (0: the engine's
 * default). For a test that sets more options before tu_db_open_with. */
void tu_db_options(anc_db_options *o, unsigned flags, uint64_t map_size);

/* Open dir with o; failing fails the test with the engine's message. */
anc_db *tu_db_open_with(const char *dir, const anc_db_options *o);

/* Open dir with tu_db_options(flags, map_size). */
anc_db *tu_db_open(const char *dir, unsigned flags, uint64_t map_size);

/* Close db; a failing close (snapshot not written) fails the test. */
void tu_db_close(anc_db *db);

/* Damage stored receipts of the closed database in datadir (a test's
 * engine directory or a stopped server's --data), directly with liblmdb,
 * the way a disk or an attacker would: in each value, the byte at
 * len / divisor gets XOR mask; every receipt when all is set, else only
 * the first. Returns how many were changed; none fails the test. */
int tu_db_receipts_tamper(const char *datadir, size_t divisor, uint8_t mask,
                          int all);
/* The same in another LMDB database of the engine ("revisions": the texts
 * kept for receipts). */
int tu_db_tamper(const char *datadir, const char *dbname, size_t divisor,
                 uint8_t mask, int all);

#ifdef __cplusplus
}
#endif
#endif /* ANC_TU_DB_H */
