/*
 * store.h — the engine's LMDB layer (private to index/).
 *
 * One LMDB environment in DIR/lmdb with six named databases (plus the
 * drift history and the three grounding databases at the end). Keys are
 * big-endian so that prefixes group and ranges sort; values are fixed
 * host-order layouts (LMDB files are host-endian anyway) led by a format
 * byte:
 *
 *   meta         "seq"     -> u64   last committed write sequence
 *                "format"  -> u32   STORE_FORMAT
 *                "next_cid"-> u32   next collection number
 *   collections  name      -> {u8 fmt, u8 has_default, u16 0, u32 cid,
 *                              u8 default_id[8], u64 created_seq}
 *   contracts    cid(4) id(8) -> {u8 fmt, u8 state, u16 0, u32 dim,
 *                              u32 metric, u32 normalize, u32 kind, u32 m,
 *                              u32 efc, u32 efs, u64 created_seq,
 *                              4 x (u32 len, bytes) name model revision
 *                              preprocess,
 *                              then, optional (older records end here):
 *                              u64 checked_at, u32 check_pass,
 *                              f32 check_min_cosine, u32 ncanaries,
 *                              ncanaries x (u32 len, text, f32[dim])}
 *   passages     cid(4) anchor(16) -> {u8 fmt, u8 deleted, u16 0,
 *                              u32 source_len, u32 chunk_len, u32 text_len,
 *                              u32 meta_len, u64 revision, u64 seq,
 *                              u8 hash[16], source chunk text meta}
 *   vectors      cid(4) id(8) anchor(16) -> {u64 label, f32[dim]}
 *   labels       cid(4) id(8) label(8)   -> anchor(16)
 *
 * A labels entry exists exactly while its vector is the passage's current
 * one under that contract: it is the map from faiss labels back to
 * passages, and, scanned from a label onwards, the replay log.
 *
 * Pointers handed out by the *_get functions point into the LMDB map and
 * live until the transaction ends or the next write in it (LMDB's rule).
 * Vector bytes are not float-aligned in the map, so vectors are copied out.
 *
 * Threading: a store may be shared by threads; each transaction belongs to
 * the thread that uses it (MDB_NOTLS, so read transactions may move between
 * calls but never be used by two threads at once). The engine serialises
 * write transactions.
 *
 * Errors: LMDB failures are ANC_ESTORAGE with mdb_strerror() kept; a value
 * that does not decode is ANC_EMALFORMED naming the database.
 */
#ifndef ANC_STORE_H
#define ANC_STORE_H

#include <stdint.h>

#include <lmdb.h>

#include "anc_error.h"
#include "anc_types.h"

#define STORE_FORMAT 1u

typedef struct store store;

int store_open(const char *dir, uint64_t map_size, int nosync, store **out,
               anc_error *err);
/* NULL is fine. No transaction may be open. */
void store_close(store *st);

int store_txn_begin(store *st, int rdonly, MDB_txn **out, anc_error *err);
/* Commits and ends txn whatever happens. MDB_MAP_FULL comes back as
 * ANC_ESTORAGE saying the map is full and how big it is. */
int store_txn_commit(store *st, MDB_txn *txn, anc_error *err);
/* NULL is fine. */
void store_txn_abort(MDB_txn *txn);

/* ---- meta ---- */
int store_seq_get(store *st, MDB_txn *txn, uint64_t *seq, anc_error *err);
int store_seq_put(store *st, MDB_txn *txn, uint64_t seq, anc_error *err);
/* Allocate the next collection number. */
int store_cid_next(store *st, MDB_txn *txn, uint32_t *cid, anc_error *err);

/* ---- collections ---- */
typedef struct store_coll {
	char name[ANC_COLLECTION_MAX + 1];
	uint32_t cid;
	int has_default;
	uint8_t default_id[ANC_CONTRACT_ID_RAW];
	uint64_t created_seq;
} store_coll;

int store_coll_put(store *st, MDB_txn *txn, const store_coll *c,
                   anc_error *err);
/* Calls cb for every collection in name order; a non-zero return from cb
 * stops the scan and is returned. */
int store_coll_scan(store *st, MDB_txn *txn,
                    int (*cb)(void *arg, const store_coll *c, anc_error *err),
                    void *arg, anc_error *err);

/* ---- contracts ---- */
typedef struct store_contract {
	uint32_t cid;
	uint8_t id[ANC_CONTRACT_ID_RAW];
	anc_contract c;
	int state;
	uint64_t created_seq;
	/* Last canary check (checked_at 0: never). */
	uint64_t checked_at;
	int check_pass;
	float check_min_cosine;
	/* Canary probes: ncanaries texts (NUL-terminated) and ncanaries * dim
	 * floats. Borrowed by store_contract_put; in a scan callback they are
	 * malloc'd by the store and freed after the callback returns (copy
	 * what you keep). */
	uint32_t ncanaries;
	char **canary_text;
	float *canary_vecs;
} store_contract;

int store_contract_put(store *st, MDB_txn *txn, const store_contract *c,
                       anc_error *err);
int store_contract_scan(store *st, MDB_txn *txn,
                        int (*cb)(void *arg, const store_contract *c,
                                  anc_error *err),
                        void *arg, anc_error *err);

/* ---- passages ---- */
typedef struct store_passage {
	int deleted;
	uint64_t revision;
	uint64_t seq;
	uint8_t hash[16]; /* first 16 bytes of SHA-256(text) */
	const char *source; /* not NUL-terminated */
	uint32_t source_len;
	const char *chunk;
	uint32_t chunk_len;
	const char *text;
	uint32_t text_len;
	const uint8_t *meta; /* NULL when meta_len is 0 */
	uint32_t meta_len;
} store_passage;

/* *found = 0 and ANC_OK when absent. */
int store_passage_get(store *st, MDB_txn *txn, uint32_t cid,
                      const uint8_t anchor[ANC_ANCHOR_RAW], store_passage *out,
                      int *found, anc_error *err);
/* p's pointers may point into the map (they are copied first). */
int store_passage_put(store *st, MDB_txn *txn, uint32_t cid,
                      const uint8_t anchor[ANC_ANCHOR_RAW],
                      const store_passage *p, anc_error *err);
/* Every passage of every collection: cb(arg, cid, deleted). */
int store_passage_scan(store *st, MDB_txn *txn,
                       int (*cb)(void *arg, uint32_t cid, int deleted,
                                 anc_error *err),
                       void *arg, anc_error *err);

/* ---- vectors ---- */
/* out (dim floats) may be NULL; ANC_EMALFORMED if the stored vector is not
 * dim floats long. */
int store_vector_get(store *st, MDB_txn *txn, uint32_t cid,
                     const uint8_t id[ANC_CONTRACT_ID_RAW],
                     const uint8_t anchor[ANC_ANCHOR_RAW], uint32_t dim,
                     uint64_t *label, float *out, int *found, anc_error *err);
/* 1 in *same when the stored vector has exactly these bytes. */
int store_vector_same(store *st, MDB_txn *txn, uint32_t cid,
                      const uint8_t id[ANC_CONTRACT_ID_RAW],
                      const uint8_t anchor[ANC_ANCHOR_RAW], const float *v,
                      uint32_t dim, int *same, anc_error *err);
/* One lookup for the write path: *found, and when found the stored
 * label and whether the stored vector has exactly these bytes (*same). */
int store_vector_peek(store *st, MDB_txn *txn, uint32_t cid,
                      const uint8_t id[ANC_CONTRACT_ID_RAW],
                      const uint8_t anchor[ANC_ANCHOR_RAW], const float *v,
                      uint32_t dim, int *found, uint64_t *label, int *same,
                      anc_error *err);
int store_vector_put(store *st, MDB_txn *txn, uint32_t cid,
                     const uint8_t id[ANC_CONTRACT_ID_RAW],
                     const uint8_t anchor[ANC_ANCHOR_RAW], uint64_t label,
                     const float *v, uint32_t dim, anc_error *err);
int store_vector_del(store *st, MDB_txn *txn, uint32_t cid,
                     const uint8_t id[ANC_CONTRACT_ID_RAW],
                     const uint8_t anchor[ANC_ANCHOR_RAW], anc_error *err);
/* Every vector of a contract, in anchor order. vec is dim floats, possibly
 * unaligned: memcpy it. */
int store_vector_scan(store *st, MDB_txn *txn, uint32_t cid,
                      const uint8_t id[ANC_CONTRACT_ID_RAW], uint32_t dim,
                      int (*cb)(void *arg, uint64_t label,
                                const uint8_t *anchor, const void *vec,
                                anc_error *err),
                      void *arg, anc_error *err);

/* ---- labels ---- */
int store_label_put(store *st, MDB_txn *txn, uint32_t cid,
                    const uint8_t id[ANC_CONTRACT_ID_RAW], uint64_t label,
                    const uint8_t anchor[ANC_ANCHOR_RAW], anc_error *err);
int store_label_del(store *st, MDB_txn *txn, uint32_t cid,
                    const uint8_t id[ANC_CONTRACT_ID_RAW], uint64_t label,
                    anc_error *err);
int store_label_get(store *st, MDB_txn *txn, uint32_t cid,
                    const uint8_t id[ANC_CONTRACT_ID_RAW], uint64_t label,
                    uint8_t anchor[ANC_ANCHOR_RAW], int *found,
                    anc_error *err);
/* Labels > after of a contract, in label order. */
int store_label_scan(store *st, MDB_txn *txn, uint32_t cid,
                     const uint8_t id[ANC_CONTRACT_ID_RAW], uint64_t after,
                     int (*cb)(void *arg, uint64_t label,
                               const uint8_t *anchor, anc_error *err),
                     void *arg, anc_error *err);

/* ---- drift history ---- */
/* drift  cid(4) id(8) usec_be(8) -> a drift report (fixed layout, see
 *        store.c), keyed by the report's time in microseconds.
 * Put a report, then delete this contract's oldest entries beyond keep
 * (0: keep everything). */
int store_drift_put(store *st, MDB_txn *txn, uint32_t cid,
                    const uint8_t id[ANC_CONTRACT_ID_RAW],
                    const anc_drift_report *r, uint32_t keep,
                    anc_error *err);
/* Reports of a contract no older than since (Unix seconds; 0: all), oldest
 * first. collection and contract are left empty for the caller. */
int store_drift_scan(store *st, MDB_txn *txn, uint32_t cid,
                     const uint8_t id[ANC_CONTRACT_ID_RAW], double since,
                     int (*cb)(void *arg, const anc_drift_report *r,
                               anc_error *err),
                     void *arg, anc_error *err);

/* ---- grounding (issue 8): plain key-value databases ----
 *
 *   receipts     id(16) -> receipt record || HMAC-SHA256(32)   (ground.c)
 *   revisions    cid(4) anchor(16) revision_be(8) -> retained passage
 *                text of a revision referenced by a receipt     (ground.c)
 *   calibration  cid(4) id(8) -> anc_calibration layout        (ground.c)
 *
 * The layouts belong to ground.c; the store only keeps the bytes. A
 * value handed to a callback or by store_kv_get points into the map
 * (LMDB's rule above). */
enum {
	STORE_DB_RECEIPTS = 0,
	STORE_DB_REVISIONS = 1,
	STORE_DB_CALIB = 2,
	STORE_GROUND_NDBS = 3
};

int store_kv_put(store *st, MDB_txn *txn, int which, const void *key,
                 size_t klen, const void *val, size_t vlen, anc_error *err);
/* *found 0 and ANC_OK when absent. */
int store_kv_get(store *st, MDB_txn *txn, int which, const void *key,
                 size_t klen, MDB_val *val, int *found, anc_error *err);
/* Absent is not an error. */
int store_kv_del(store *st, MDB_txn *txn, int which, const void *key,
                 size_t klen, anc_error *err);
/* Keys starting with prefix (plen 0: all), in key order; a non-zero
 * return from cb stops the scan and is returned. cb must not write to
 * the same database. */
int store_kv_scan(store *st, MDB_txn *txn, int which, const void *prefix,
                  size_t plen, int (*cb)(void *arg, const MDB_val *k,
                                         const MDB_val *v, anc_error *err),
                  void *arg, anc_error *err);
/* Entries in the database. */
int store_kv_count(store *st, MDB_txn *txn, int which, uint64_t *n,
                   anc_error *err);

/* ---- drift configuration ---- */
/* drift  cid(4) id(8) -> a contract's drift configuration (set by
 * anc_db_drift_configure; absent: the server's defaults). Lives in the
 * drift table beside the history (see store.c for why they never mix).
 * get: *found 0 and *c untouched when there is none; ANC_EMALFORMED when
 * the value does not decode. */
int store_drift_config_put(store *st, MDB_txn *txn, uint32_t cid,
                           const uint8_t id[ANC_CONTRACT_ID_RAW],
                           const anc_drift_config *c, anc_error *err);
int store_drift_config_get(store *st, MDB_txn *txn, uint32_t cid,
                           const uint8_t id[ANC_CONTRACT_ID_RAW],
                           anc_drift_config *c, int *found,
                           anc_error *err);

#endif /* ANC_STORE_H */
