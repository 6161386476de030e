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
 * serialised: LMDB transactions by a writer mutex, index updates by an
 * index mutex taken in commit order, so each index sees its vectors in
 * sequence order, and one upsert's index update overlaps the next one's
 * commit. A writer returns once its vectors are in the index. Queries
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
	/* Grounding checks and receipts (issue 8; README "Grounding checks
	 * and receipts"). Receipts are authenticated with HMAC-SHA256 under
	 * a 32-byte secret: receipt_key when receipt_key_set, else the
	 * content of DIR/receipt.key, created (mode 0600, 32 random bytes
	 * from OpenSSL's RAND_bytes) on first open. */
	int receipt_key_set;
	uint8_t receipt_key[32];
	uint32_t receipt_keep;   /* newest receipts kept; default 100000 */
	uint32_t receipt_days;   /* days a retained revision text outlives
	                            its last reference by a receipt;
	                            default 30 */
	int calib_off;           /* 1: no background calibration thread
	                            (verify and anc_db_calibration still
	                            calibrate on demand) */
	uint64_t reply_max;      /* largest answer resolve and query build,
	                            in bytes (keys, text, metadata and a
	                            fixed cost per entry): over it they stop
	                            with ANC_ETOOBIG instead of allocating
	                            it; 0 = no bound. The server sets its
	                            max message. */
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
	uint32_t snapshots_written; /* at open: costly rebuilds and long
	                               replays are snapshotted at once */
	double seconds;            /* wall time of anc_db_open */
} anc_db_open_stats;

void anc_db_get_open_stats(const anc_db *db, anc_db_open_stats *st);

/* The upsert path since open, for /metrics: groups committed (one LMDB
 * transaction and one fsync each; concurrent upserts share a group), the
 * records in them, and the wall seconds spent in stage 1 (the transaction
 * and its fsync, under the writer mutex: the serial part of a load) and in
 * stage 2 (faiss adds and drift bookkeeping, overlapping the next group's
 * stage 1). engine.c's "upsert" section has the design. */
typedef struct anc_db_write_stats {
	uint64_t groups;
	uint64_t records;
	double commit_seconds;
	double index_seconds;
	/* Index snapshots that could not be written (a full disk, a damaged
	 * snapshots/ path) since open; each is retried after 30 s, and the
	 * next start replays LMDB from the last good one. */
	uint64_t snapshot_failures;
} anc_db_write_stats;

void anc_db_get_write_stats(anc_db *db, anc_db_write_stats *st);

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
	/* The pinned anchors of the request (anc_query_opts.pins), in its
	 * order, each as anc_db_resolve answers it (text and metadata of
	 * live ones), read in the transaction the hits were read in. NULL
	 * and 0 without pins. Hits are not filtered by them. */
	anc_resolved *pinned;
	uint32_t npinned;
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

/* Per-request search parameters (issue 6). Zero everywhere is
 * anc_db_query. A parameter that does not apply to the contract's index
 * kind is ignored (prov says what was applied), but one out of its range
 * is ANC_EINVAL naming it. */
typedef struct anc_query_opts {
	uint32_t ef;     /* HNSW kinds: efSearch for this query,
	                    1..ANC_EF_MAX; 0: the contract's ef_search */
	uint32_t nprobe; /* IVF kinds: inverted lists searched, 1..nlist;
	                    0: the contract's nprobe */
	int exact;       /* 1: exhaustive search over the stored float
	                    vectors (LMDB) whatever the index kind; costs a
	                    scan of the contract's vectors per request */
	uint32_t rerank; /* approximate search only: fetch this many live
	                    candidates (at least k, at most ANC_RERANK_MAX),
	                    re-score them exactly from the stored vectors and
	                    keep the best k; 0: none */
	int meta;        /* 1: each hit carries its passage's metadata
	                    (anc_hit.meta); not part of a receipt */
	const anc_anchor_str *pins; /* anchors the answer includes whatever
	                    the search finds (anc_query_result.pinned): the
	                    caller's working set; NULL: none */
	uint32_t npins;  /* 0..ANC_QUERY_PINS_MAX */
} anc_query_opts;

/* anc_db_query with search parameters; opt NULL is anc_db_query. prov
 * reports exact, ef_search, nprobe and rerank as applied. Searches of
 * fewer than 16 vectors run on the calling thread; larger batches are
 * one faiss call over every core (vindex.c's design note). */
int anc_db_query2(anc_db *db, const char *collection, const char *contract_ref,
                  const float *vecs, uint32_t nq, uint32_t dim, uint32_t k,
                  int with_text, const anc_query_opts *opt,
                  anc_query_result **out, anc_error *err);

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
 * drift_score. The reference is the vectors indexed: filled from LMDB at
 * open, fed by every write, and rebuilt from LMDB in the background (the
 * drift thread) once deleted or replaced vectors make up 1% of it (any
 * number for a reference of 4096 or fewer) and deletes have been quiet
 * for 2 s, or 30 s after the previous rebuild.
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

/* Replace a contract's drift configuration and record it in LMDB (one
 * transaction; it is reloaded at every open). ANC_EINVAL names the bad
 * field (anc_drift_config_check); on any error the old configuration
 * stays, in memory and on disk. A new window or write_window size empties
 * that ring; a new reservoir size empties the reference sample, which the
 * drift thread then refills from LMDB. */
int anc_db_drift_configure(anc_db *db, const char *collection,
                           const char *contract_ref,
                           const anc_drift_config *cfg, anc_error *err);

/* The same from "key=value,..." changes to the current configuration
 * (anc_drift_config_apply, anc_proto.h): the `drift` op's "set". */
int anc_db_drift_set(anc_db *db, const char *collection,
                     const char *contract_ref, const char *set,
                     anc_error *err);

/* A contract's current drift configuration. */
int anc_db_drift_config(anc_db *db, const char *collection,
                        const char *contract_ref, anc_drift_config *cfg,
                        anc_error *err);

/* ---- grounding checks and receipts (issue 8) ----
 *
 * anc_types.h documents the calibration rule, the verify verdicts and what
 * a receipt holds. Calibration runs on a background thread (started by
 * anc_db_open unless calib_off) that wakes after writes and recalibrates a
 * contract whose live vector count moved by more than ANC_CALIB_DRIFT
 * since its last calibration (or that has none and holds at least
 * ANC_CALIB_MIN vectors); the same thread prunes receipts and retained
 * revision texts. Every query's hit lists carry the confidence of their
 * top hit (anc_hitlist.confidence). All functions are thread-safe. */

/* The calibration of a contract (NULL or "" ref: the default).
 * recompute 1: compute it now from the stored vectors (a few hundred ms
 * for 2000 vectors of 384 floats) and store it; 0: the stored one, or
 * computed now when there is none. ANC_EPRECONDITION when the contract
 * has fewer than ANC_CALIB_MIN vectors; ANC_ERETIRED for a retired one. */
int anc_db_calibration(anc_db *db, const char *collection,
                       const char *contract_ref, int recompute,
                       anc_calibration *out, anc_error *err);

/* Verify n claims (1..ANC_VERIFY_CLAIMS_MAX; each with
 * 0..ANC_VERIFY_CITED_MAX cited anchors) against the stored vectors of
 * the contract, exactly. Claim vectors pass the contract's checks
 * (ANC_EDIM, ANC_ENONFINITE, ANC_EVIOLATION naming claims[i]); a
 * malformed cited anchor is ANC_EINVAL naming claims[i].cited[j]. The
 * contract is calibrated first if it has no calibration (ANC_EPRECONDITION
 * below ANC_CALIB_MIN vectors). receipt 1 stores a receipt (its ID in
 * (*out)->prov.receipt). Free with anc_verify_result_free. */
int anc_db_verify(anc_db *db, const char *collection,
                  const char *contract_ref, const anc_claim *claims,
                  uint32_t n, int receipt, anc_verify_result **out,
                  anc_error *err);
void anc_verify_result_free(anc_verify_result *r); /* NULL is fine */

/* Store a receipt for the answer res that anc_db_query2 gave for these
 * arguments (the same collection, vectors, k, with_text and opt; the
 * contract is res->prov.contract) and write its ID into
 * res->prov.receipt. The passage texts of the returned revisions are
 * retained (see anc_db_options.receipt_days). One durable write. */
int anc_db_receipt_query(anc_db *db, const char *collection,
                         const float *vecs, uint32_t nq, uint32_t dim,
                         uint32_t k, int with_text,
                         const anc_query_opts *opt, anc_query_result *res,
                         anc_error *err);

/* Read receipt id (32 hex digits; ANC_EINVAL otherwise), re-checking its
 * HMAC: ANC_ENOTFOUND when absent (never made, or pruned), ANC_ETAMPERED
 * when the stored record does not match its MAC. with_text 1 fills
 * hits[].text from the retained revision texts. Free with
 * anc_receipt_free. */
int anc_db_receipt_get(anc_db *db, const char *id, int with_text,
                       anc_receipt **out, anc_error *err);
void anc_receipt_free(anc_receipt *r); /* NULL is fine */

/* Re-run the receipt's query (or verify) with its recorded vectors and
 * parameters against the current store and list what changed. Same
 * errors as anc_db_receipt_get, plus those of the query (a contract
 * retired since: ANC_ERETIRED). Free with anc_replay_result_free. */
int anc_db_receipt_replay(anc_db *db, const char *id,
                          anc_replay_result **out, anc_error *err);
void anc_replay_result_free(anc_replay_result *r); /* NULL is fine */

/* Counters since open, for metrics. */
typedef struct anc_ground_stats {
	uint64_t receipts_made;
	uint64_t receipts_read;
	uint64_t receipts_tampered;  /* reads refused for a bad MAC */
	uint64_t replays;
	uint64_t verify_claims;
	uint64_t verdicts[ANC_VERDICT_LAST + 1];
	uint64_t calibrations;       /* computed since open */
	uint64_t receipts_stored;    /* in LMDB now */
	uint64_t revisions_retained; /* in LMDB now */
} anc_ground_stats;

int anc_db_ground_stats(anc_db *db, anc_ground_stats *out, anc_error *err);

/* Describe every collection and contract. Free with anc_info_free. */
int anc_db_info(anc_db *db, anc_info **out, anc_error *err);
void anc_info_free(anc_info *info);

#ifdef __cplusplus
}
#endif
#endif /* ANC_INDEX_H */
