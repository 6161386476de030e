/*
 * anc_index.h — the Anchorage engine, embeddable like SQLite: collections,
 * contracts, passages with stable anchors, LMDB storage, one faiss index per
 * (collection, contract).
 *
 * Durability
 * ----------
 * LMDB is the source of truth. anc_db_upsert / anc_db_delete return only
 * after their LMDB transaction has committed (with fsync unless the database
 * was opened with nosync). Every committed write gets the next value of one
 * monotonically increasing sequence number; each vector written gets that
 * number as its faiss label, so labels are never reused.
 *
 * The faiss indexes are derived state: after commit the new vectors are
 * added to the index; anc_db_snapshot (and anc_db_close) writes each index to
 * DIR/snapshots/ with a checksummed header recording the sequence number it
 * covers. anc_db_open loads each snapshot, replays LMDB records newer than
 * it, and rebuilds from LMDB when the snapshot is missing, damaged, or claims
 * a sequence newer than LMDB. A label found by faiss is returned only if
 * LMDB still maps it to a live passage's current vector, so deleted or
 * replaced vectors never come back, whatever the index kind.
 *
 * Threading
 * ---------
 * An anc_db may be used from any number of threads. Queries run concurrently
 * (a read lock per index, an LMDB read transaction each). Writes are
 * serialised by one writer mutex held across the LMDB transaction and the
 * index update, so each index sees its vectors in sequence order. Queries
 * wait only while one batch is added to the index they search.
 *
 * Errors: every function returns 0 or an anc_code and fills err (may be NULL)
 * with a message naming the collection, contract or field at fault. LMDB
 * failures come back as ANC_ESTORAGE, faiss failures as ANC_EINDEX, with the
 * library's own message kept.
 */
#ifndef ANC_INDEX_H
#define ANC_INDEX_H

#include <stddef.h>
#include <stdint.h>

#include "anc_error.h"
#include "anc_types.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct anc_db anc_db;

typedef struct anc_db_options {
	uint64_t map_size;       /* LMDB map size, bytes; default 64 GiB */
	int nosync;              /* 1: no fsync on commit (tests, benches) */
	uint64_t snapshot_every; /* snapshot an index after this many vectors
	                            added since its last snapshot; 0 = only on
	                            anc_db_snapshot/close; default 100000 */
	int quiet;               /* 1: no start-up messages on stderr */
	/* Drift tracking (issue 4; README "Drift detection and metrics").
	 * Zero means the default for each of the sizes. */
	int drift_off;           /* 1: no drift tracking at all (benches) */
	uint32_t drift_window;   /* query window per contract; default 1024 */
	uint32_t drift_interval; /* seconds between background reports;
	                            default 60 */
	uint32_t drift_history;  /* reports kept in LMDB per contract;
	                            default 1440 (one day at 60 s) */
} anc_db_options;

void anc_db_options_default(anc_db_options *opt);

/* Open (creating if needed) the database in directory dir. opt may be NULL
 * for defaults. Loads or rebuilds every index before returning. */
int anc_db_open(const char *dir, const anc_db_options *opt, anc_db **out,
                anc_error *err);

/* Snapshot every index that changed, then close. NULL is fine. Returns the
 * first snapshot error, but always closes. */
int anc_db_close(anc_db *db, anc_error *err);

/* Write a snapshot of every index that changed since its last one. */
int anc_db_snapshot(anc_db *db, anc_error *err);

/* Statistics about start-up, for logs and tests. */
typedef struct anc_db_open_stats {
	uint32_t indexes;          /* indexes opened */
	uint32_t snapshots_loaded; /* loaded from a valid snapshot */
	uint32_t rebuilt;          /* rebuilt from LMDB (missing/damaged) */
	uint64_t replayed;         /* vectors replayed after a snapshot */
	double seconds;            /* wall time of anc_db_open */
} anc_db_open_stats;

void anc_db_get_open_stats(const anc_db *db, anc_db_open_stats *st);

/* Create a collection. *created (may be NULL) is 1 if new, 0 if it already
 * existed (not an error). ANC_EINVAL for a bad name. */
int anc_db_collection_create(anc_db *db, const char *name, int *created,
                             anc_error *err);

/* Register a contract on a collection. The contract is validated (and HNSW
 * defaults filled) on a copy. Idempotent: the same content gives the same ID
 * and *created = 0. The same ID with a different index spec is
 * ANC_ECONFLICT. The first contract of a collection becomes its default;
 * later ones start as migrating. */
int anc_db_contract_register(anc_db *db, const char *collection,
                             const anc_contract *c, anc_contract_id_str id_out,
                             int *created, anc_error *err);

/* Same, with canary probes (anc_types.h): canaries[i].vec must have the
 * contract's dim and pass the same checks as any vector under it (finite,
 * norm for normalize:true; stored as given, not normalised); at most
 * ANC_CANARY_MAX probes, texts 1..ANC_CANARY_TEXT_MAX bytes. The probes are
 * stored with the contract; registering an existing contract with other
 * probes (or none where it has some, and the reverse) is ANC_ECONFLICT.
 * n 0 is anc_db_contract_register. */
int anc_db_contract_register_canaries(anc_db *db, const char *collection,
                                      const anc_contract *c,
                                      const anc_canary *canaries, uint32_t n,
                                      anc_contract_id_str id_out,
                                      int *created, anc_error *err);

/* Make a contract the collection's default; the previous default becomes
 * migrating (still queryable and writable, so a promotion can be undone
 * by promoting it back). Refused with ANC_EPRECONDITION when the contract
 * covers fewer than all live passages, unless force; ANC_ERETIRED for a
 * retired contract. Promoting the default again is not an error. id_out
 * gets the promoted contract's ID, previous_out (may be NULL) the old
 * default's ID ("" when it was already the default). One durable LMDB
 * transaction; queries naming no contract switch atomically. */
int anc_db_contract_promote(anc_db *db, const char *collection,
                            const char *contract_ref, int force,
                            anc_contract_id_str id_out,
                            anc_contract_id_str previous_out, anc_error *err);

/* Retire a contract: queries and upserts under it get ANC_ERETIRED from
 * now on, and retirement is final (promote refuses it). Retiring the
 * default is ANC_EPRECONDITION (promote another first); retiring a retired
 * contract is not an error. Its vectors stay in LMDB (removed with their
 * passages, so delete stays complete) and its faiss index is not loaded by
 * later anc_db_open calls, which frees the memory at the next restart. */
int anc_db_contract_retire(anc_db *db, const char *collection,
                           const char *contract_ref,
                           anc_contract_id_str id_out, anc_error *err);

/* Canary check: vecs holds n vectors of dim floats, vector i being what
 * the client's embedder gives today for probe i's text. n must equal the
 * number of probes (ANC_EINVAL otherwise), dim the contract's (ANC_EDIM),
 * values finite (ANC_ENONFINITE); a contract without probes is
 * ANC_EPRECONDITION. The result (time, pass, lowest cosine) is stored
 * durably with the contract and reported by anc_db_info. Works on any
 * state, retired included. Free *out with anc_check_result_free. */
int anc_db_contract_check(anc_db *db, const char *collection,
                          const char *contract_ref, const float *vecs,
                          uint32_t n, uint32_t dim, anc_check_result **out,
                          anc_error *err);
void anc_check_result_free(anc_check_result *r); /* NULL is fine */

/* Insert or replace n records (all or nothing: every record is checked
 * first: dimension, finite values, norm for normalize:true contracts, string
 * sizes; then one LMDB transaction). results[i] (caller-allocated, n
 * entries) says what happened to records[i]; *seq (may be NULL) is the
 * sequence number of the commit (unchanged if nothing was written).
 * contract_ref: ID or "name@revision"; a retired contract is ANC_ERETIRED
 * and vector refusals name the default, as for anc_db_query. A record with
 * text NULL for an existing live passage attaches (or replaces) its vector
 * under this contract; the first vector under a contract with text and
 * meta unchanged keeps the revision (a migration is not an edit). For an
 * unknown (source, chunk) it creates the passage with empty text. */
int anc_db_upsert(anc_db *db, const char *collection, const char *contract_ref,
                  const anc_record *records, uint32_t n,
                  anc_upsert_result *results, uint64_t *seq, anc_error *err);

/* The answer to a query; free with anc_query_result_free. */
typedef struct anc_query_result {
	anc_hitlist *lists; /* nq lists */
	uint32_t nq;
	anc_provenance prov;
	void *arena_; /* private */
} anc_query_result;

/* k nearest live passages for each of nq vectors of dim floats.
 * contract_ref NULL or "" means the collection's default contract;
 * prov.contract says which one answered. A migrating or default contract
 * is searched in its own index. Refusals name the collection's current
 * default contract (ID and name@revision): ANC_ERETIRED for a retired
 * contract, ANC_ENOCONTRACT for an unknown one, ANC_EDIM for a dimension
 * other than the contract's, ANC_EVIOLATION when a normalize:true
 * contract gets a vector with | ||v|| - 1 | > ANC_NORM_TOLERANCE (the same
 * checks as upsert). */
int anc_db_query(anc_db *db, const char *collection, const char *contract_ref,
                 const float *vecs, uint32_t nq, uint32_t dim, uint32_t k,
                 int with_text, anc_query_result **out, anc_error *err);
void anc_query_result_free(anc_query_result *r);

/* Resolve anchors: current revision and text, or deleted / unknown.
 * *out is an array of n entries; free with anc_resolved_free(*out, n). */
int anc_db_resolve(anc_db *db, const char *collection,
                   const anc_anchor_str *anchors, uint32_t n,
                   anc_resolved **out, anc_error *err);
void anc_resolved_free(anc_resolved *r, uint32_t n);

/* Delete passages (leaving tombstones) with all their vectors. results is
 * caller-allocated, n entries. One LMDB transaction. */
int anc_db_delete(anc_db *db, const char *collection,
                  const anc_anchor_str *anchors, uint32_t n,
                  anc_delete_result *results, uint64_t *seq, anc_error *err);

/* ---- drift (issue 4) ----
 *
 * Each contract with an index has a drift tracker: the indexed vectors are
 * its reference, the last drift_window query vectors its window (anc_types.h
 * documents the report). A background thread refreshes the reference's
 * top-1 scores and per-query thresholds when the reference changed, and
 * computes a report every drift_interval seconds for every contract whose
 * window moved, keeping the last drift_history reports in LMDB. Queries pay
 * one lock and one copy per vector; their hit lists carry drift_flag and
 * drift_score. The reference is every vector indexed since open (it is
 * rebuilt from LMDB at each open, so deletions reach it at the next open).
 *
 * All return ANC_EUNSUPPORTED when drift tracking is off, ANC_ENOCOLL /
 * ANC_ENOCONTRACT for unknown names, ANC_EINVAL for a retired contract
 * (it has no index, hence no tracker). */

/* The report of a contract. fresh 1: compute it now (refreshing a stale
 * reference first; up to a few hundred ms, plus the reference's top-1
 * searches) and record it in the history; fresh 0: the latest one, computed
 * now only if there is none. */
int anc_db_drift_report(anc_db *db, const char *collection,
                        const char *contract_ref, int fresh,
                        anc_drift_report *out, anc_error *err);

/* Recorded reports of a contract no older than since (Unix seconds; 0:
 * all), oldest first; *out is malloc'd (free()), *n entries (0 and NULL
 * when none). */
int anc_db_drift_history(anc_db *db, const char *collection,
                         const char *contract_ref, double since,
                         anc_drift_report **out, uint32_t *n,
                         anc_error *err);

/* The latest report of every tracked contract that has one (for metrics
 * and the status page; computes nothing). malloc'd array, free(). */
int anc_db_drift_latest(anc_db *db, anc_drift_report **out, uint32_t *n,
                        anc_error *err);

/* Replace a contract's drift configuration (not persisted: defaults come
 * back at the next open). ANC_EINVAL names the bad field. */
int anc_db_drift_configure(anc_db *db, const char *collection,
                           const char *contract_ref,
                           const anc_drift_config *cfg, anc_error *err);

/* Describe every collection and contract. Free with anc_info_free. */
int anc_db_info(anc_db *db, anc_info **out, anc_error *err);
void anc_info_free(anc_info *info);

#ifdef __cplusplus
}
#endif
#endif /* ANC_INDEX_H */
