/*
 * ground.h — grounding checks and retrieval receipts (issue 8), private to
 * index/: confidence calibration, verify, receipts. The public face is the
 * anc_db_calibration / anc_db_verify / anc_db_receipt_* functions of
 * anc_index.h, which ground.c defines; anc_types.h documents the rules.
 *
 * Two halves talk through this header:
 *   - engine.c owns the catalog and the store; it gives ground.c a
 *     resolved view of a contract (ground_target) and its store, and calls
 *     the ground_* hooks: open/close with the database, a nudge after each
 *     committed write, the confidence label of each query answer, and the
 *     calibration shown by anc_db_info;
 *   - ground.c owns the calibrations (in memory and in LMDB), the
 *     background thread that keeps them current and prunes receipts, the
 *     exact scans of verify, and the receipt records with their HMAC key.
 *
 * Threading: every function may be called from any thread. ground.c takes
 * its own mutex only around its in-memory state, never while calling into
 * the engine, so it adds no lock-order constraint to engine.c's.
 */
#ifndef ANC_GROUND_H
#define ANC_GROUND_H

#include <stdint.h>

#include "anc_index.h"
#include "store.h"

typedef struct ground ground;

/* A contract as ground.c needs it, copied out of the catalog. */
typedef struct ground_target {
	char collection[ANC_COLLECTION_MAX + 1];
	uint32_t cid;
	uint8_t id[ANC_CONTRACT_ID_RAW];
	anc_contract_id_str idstr;
	anc_contract c;
	int state;           /* anc_contract_state */
	uint64_t vectors;    /* live vectors indexed now */
	uint64_t seq;        /* last write applied to its index */
	uint64_t generation; /* index generation */
} ground_target;

/* ---- provided by engine.c ---- */
store *engine_store(anc_db *db);
ground *engine_ground(anc_db *db);
/* Resolve (collection, ref) as a query does: ANC_ENOCOLL, ANC_ENOCONTRACT,
 * ANC_ERETIRED with the engine's messages. */
int engine_ground_lookup(anc_db *db, const char *collection, const char *ref,
                         ground_target *out, anc_error *err);
/* Every contract that is not retired; *out malloc'd (free()). */
int engine_ground_targets(anc_db *db, ground_target **out, uint32_t *n,
                          anc_error *err);
/* Check a claim vector as a query vector is checked (dimension, finite,
 * norm for normalize:true) and copy it, prepared (normalised for cosine),
 * into out. what names it in messages. */
int engine_ground_vector(anc_db *db, const ground_target *t, const float *v,
                         uint32_t dim, const char *what, float *out,
                         anc_error *err);

/* ---- provided by ground.c, called by engine.c ---- */

/* Start grounding for db (dir: the data directory, for receipt.key).
 * opt is the database's options (copied). */
int ground_open(anc_db *db, const char *dir, const anc_db_options *opt,
                ground **out, anc_error *err);
/* Stop the background thread and free. NULL is fine. Must run before the
 * store is closed. */
void ground_close(ground *g);
/* A write committed: the background thread will look at the counts. */
void ground_note_writes(ground *g);
/* Around a group of writes: no recalibration starts while one is running
 * (it counts as not quiet), and its end counts as a write. NULL is fine. */
void ground_write_begin(ground *g);
void ground_write_end(ground *g);
/* Set the confidence of each list of res (its top hit against the
 * calibration of (cid, id)). NULL g is fine (unknown). */
void ground_label(ground *g, uint32_t cid, const uint8_t id[ANC_CONTRACT_ID_RAW],
                  anc_query_result *res);
/* The calibration of (cid, id), zeroed when none. */
void ground_calib_get(ground *g, uint32_t cid,
                      const uint8_t id[ANC_CONTRACT_ID_RAW],
                      anc_calibration *out);

/* ---- pure functions (unit tests) ---- */

/* Calibrate from n vectors of dim floats (prepared: normalised for
 * cosine) under metric, sampling deterministically from seed. n must be
 * >= 2. computed_at and vectors are left for the caller. */
int ground_calibrate_vectors(const float *v, uint32_t n, uint32_t dim,
                             anc_metric metric, uint64_t seed,
                             anc_calibration *out, anc_error *err);
/* Confidence of a top score under c (ANC_CONF_UNKNOWN without one). */
int ground_confidence(const anc_calibration *c, float score);

#endif /* ANC_GROUND_H */
