/*
 * vindex.h — one faiss index per (collection, contract), with its snapshot
 * file (private to index/).
 *
 * An index holds the vectors of one contract keyed by their faiss label
 * (the write sequence that stored them, see store.h). It is derived state:
 * vindex_open loads DIR/snapshots/<cid>-<contract id>.faiss, checks it and
 * replays the labels LMDB committed after it, or rebuilds from LMDB's
 * vectors when the snapshot is missing, damaged, for another contract, or
 * claims a sequence LMDB has not reached. Entries of deleted or replaced
 * vectors stay in the faiss index (HNSW cannot remove them) and are
 * filtered by the caller through the labels table; `live` counts the
 * vectors LMDB still maps, so ntotal - live is the number of stale entries.
 *
 * Snapshot file: a 128-byte header then the faiss serialisation.
 *   0  "ANCSNAP1"            8  u32 format (1)     12 u32 header size (128)
 *   16 contract id (8)       24 u32 dim            28 u32 kind
 *   32 u64 covered label     40 u64 ntotal         48 u64 generation
 *   56 u64 payload bytes     64 SHA-256 over bytes 0..63 and the payload
 *   96 zero
 * Written to a .tmp file, fsynced, renamed into place, directory fsynced,
 * so a crash leaves either the old or the new snapshot, never half of one.
 *
 * Threading: each index has a rwlock. vindex_rdlock/vindex_unlock bracket
 * the *_locked calls (searches and counters, from any number of threads);
 * vindex_add, vindex_note and vindex_swap take the write lock themselves.
 * The engine's writer mutex serialises all mutating calls, so adds arrive
 * in label order.
 */
#ifndef ANC_VINDEX_H
#define ANC_VINDEX_H

#include <stdint.h>

#include "anc_error.h"
#include "anc_types.h"
#include "store.h"

typedef struct vindex vindex;

typedef struct vindex_open_info {
	int loaded;        /* 1: a valid snapshot was loaded */
	int rebuilt;       /* 1: rebuilt from LMDB */
	uint64_t replayed; /* vectors added from LMDB after the snapshot */
} vindex_open_info;

/* Load or rebuild the index of contract c (already validated) of
 * collection cid. quiet: 1 to keep the reasons for a rebuild off stderr. */
int vindex_open(store *st, const char *snapdir, uint32_t cid,
                const anc_contract *c, const uint8_t id[ANC_CONTRACT_ID_RAW],
                int quiet, vindex **out, vindex_open_info *info,
                anc_error *err);

/* A new empty index (a contract just registered). st is kept for the
 * background builds of trained kinds and exact searches; quiet: 1 to keep
 * background build failures off stderr. */
int vindex_create(store *st, const char *snapdir, uint32_t cid,
                  const anc_contract *c, const uint8_t id[ANC_CONTRACT_ID_RAW],
                  uint64_t seq, int quiet, vindex **out, anc_error *err);

/* NULL and half-built indexes are fine. Stops a background build (waits
 * for its current faiss call, e.g. a training, to return). */
void vindex_destroy(vindex *vx);

/* Add n vectors (already normalised for cosine) with their labels, in
 * increasing label order, then record that write seq has been applied and
 * that the number of live vectors changed by live_delta. Write lock. */
int vindex_add(vindex *vx, uint64_t n, const float *vecs,
               const uint64_t *labels, uint64_t seq, int64_t live_delta,
               anc_error *err);

/* Tests only: the next this many faiss adds (a write's, a rebuild's)
 * fail with ANC_EINDEX, as an out-of-memory faiss would. */
extern int vindex_test_fail_adds;

/* Record a write that removed vectors without adding any. Write lock. */
void vindex_note(vindex *vx, uint64_t seq, int64_t live_delta);

/* Rebuild from LMDB (txn must see every committed vector of the contract
 * and stay unchanged; the engine holds its writer mutex), then swap the new
 * faiss index in under the write lock and bump the generation. A trained
 * kind that is trained is instead retrained in the background (the call
 * returns at once; vindex.c's design note), unless repair: the index lacks
 * committed vectors (a failed add), so it is rebuilt now, a trained kind
 * onto its exact placeholder, and retrained in the background. */
int vindex_rebuild(vindex *vx, store *st, MDB_txn *txn, int repair,
                   anc_error *err);

/* Trained kinds: start a background retrain and rebuild now if none runs
 * (and the contract has enough vectors). No-op for flat and hnsw. */
void vindex_build_request(vindex *vx);

/* 1 while a background build runs. */
int vindex_building(vindex *vx);

/* Write the snapshot if anything was added since the last one. Read lock
 * (searches continue, writers wait); one snapshot at a time per index
 * (the background build writes one after its swap). */
int vindex_snapshot(vindex *vx, anc_error *err);

void vindex_rdlock(vindex *vx);
void vindex_unlock(vindex *vx);

typedef struct vindex_stats {
	uint64_t ntotal;     /* entries in the faiss index */
	uint64_t live;       /* entries LMDB still maps */
	uint64_t applied;    /* last write sequence applied */
	uint64_t generation; /* bumped by every rebuild */
	uint64_t unsnapped;  /* vectors added since the last snapshot */
	int trained;         /* 0: a trained kind served by its flat
	                        placeholder */
	int building;        /* a background build is recording writes */
	uint64_t builds;     /* background builds swapped in since open */
	uint32_t code_bytes; /* per entry, see anc_contract_info */
	uint32_t index_bytes;
} vindex_stats;

void vindex_stats_locked(const vindex *vx, vindex_stats *s);

/* k nearest entries of each of nq vectors (dim floats, already normalised
 * for cosine); labels -1 where fewer exist. Caller holds the read lock. */
int vindex_search_locked(const vindex *vx, uint32_t nq, const float *x,
                         uint32_t k, float *dist, int64_t *labels,
                         anc_error *err);

/* Search parameters; 0 means the contract's own. */
typedef struct vindex_params {
	uint32_t ef;     /* HNSW kinds */
	uint32_t nprobe; /* IVF kinds; above nlist means nlist */
} vindex_params;

/* vindex_search_locked with parameters p (NULL: the contract's). *used
 * (may be NULL) gets what was applied: ef for a trained HNSW kind,
 * nprobe for a trained IVF kind, 0 otherwise (flat and placeholders
 * are exact). Fewer than 16 queries run on the calling thread only;
 * more use every core (OpenMP; design note in vindex.c). */
int vindex_search2_locked(const vindex *vx, uint32_t nq, const float *x,
                          uint32_t k, const vindex_params *p, float *dist,
                          int64_t *labels, vindex_params *used,
                          anc_error *err);

/* Exact k nearest of each of nq vectors among the vectors txn sees for
 * the contract (read from LMDB: only current vectors of live passages,
 * so never a stale entry), best first; labels -1 where fewer exist. No
 * index lock needed. */
int vindex_search_exact(const vindex *vx, MDB_txn *txn, uint32_t nq,
                        const float *x, uint32_t k, float *dist,
                        int64_t *labels, anc_error *err);

#endif /* ANC_VINDEX_H */
