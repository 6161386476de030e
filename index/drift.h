/*
 * drift.h — per-contract drift statistics (public to index/, prefix
 * anc_drift_). The engine owns one anc_drift per (collection, contract);
 * tests and benchmarks may drive one directly.
 *
 * What it keeps (constant memory, whatever the traffic)
 * -----------------------------------------------------
 *   reference: count, running mean and variance per dimension (Welford, in
 *     double), a reservoir sample of cfg.reservoir indexed vectors (Vitter's
 *     algorithm R, so every indexed vector has the same chance to be in it),
 *     and up to ANC_DRIFT_REF_SCORES reference top-1 scores supplied by the
 *     engine (each the best score of a reservoir vector against the index,
 *     its own entry excluded);
 *   current: a ring of the last cfg.window query vectors with their top-1
 *     scores, and a ring of the last cfg.write_window written vectors.
 * Memory: (window + reservoir + write_window) * dim * 4 bytes plus
 * 16 * dim bytes of moments plus a few KiB; at the defaults (1024, 1024,
 * 256) that is 9.2 KiB * dim: 3.5 MiB at dim 384, 7.2 MiB at dim 784.
 * Once a report has run, a cache of the reservoir's sorted columns adds
 * reservoir * dim * 4 bytes (4 KiB * dim at the defaults), and a
 * reference rebuild holds a second reservoir and moments while it runs.
 *
 * The report (anc_drift_report_compute) runs five statistics on snapshots
 * of the reference sample and of the window; anc_types.h documents each,
 * with its default and where that default comes from.
 *
 * Threading
 * ---------
 * Three mutexes, never nested except ref_mu -> ring_mu in
 * anc_drift_refresh:
 *   ring_mu  the query and write rings, and the per-query thresholds. The
 *            serving path (anc_drift_observe_query) holds it for one
 *            distance to the cached centroid and one memcpy of dim floats;
 *   ref_mu   the reference moments, reservoir and scores (writers: the
 *            engine under its writer mutex; readers: report snapshots);
 *   rep_mu   serialises report computations, which work on private copies
 *            and hold no other lock while computing.
 * Every function may be called from any thread.
 */
#ifndef ANC_DRIFT_H
#define ANC_DRIFT_H

#include <stdint.h>

#include "anc_error.h"
#include "anc_types.h"

typedef struct anc_drift anc_drift;

/* Reference top-1 scores kept (the engine computes this many at most). */
#define ANC_DRIFT_REF_SCORES 512

/* Fill cfg with the defaults of anc_types.h (ANC_DRIFT_DEFAULT_*). */
void anc_drift_config_default(anc_drift_config *cfg);

/* ANC_EINVAL naming the field when a value is out of range:
 * window/reservoir 16..65536, write_window 0..65536, permutations 0..10000,
 * folds 2..20, probabilities and shares in (0, 1), auc in (0.5, 1),
 * min_window >= 8, min_reference >= 8. */
int anc_drift_config_check(const anc_drift_config *cfg, anc_error *err);

/* A tracker for vectors of dim floats under metric. cfg NULL: defaults.
 * seed makes the reservoir and the report's random choices reproducible. */
int anc_drift_create(uint32_t dim, anc_metric metric,
                     const anc_drift_config *cfg, uint64_t seed,
                     anc_drift **out, anc_error *err);
/* NULL and half-built trackers are fine. */
void anc_drift_destroy(anc_drift *d);

uint32_t anc_drift_dim(const anc_drift *d);

/* Replace the configuration (window sizes included: the rings are cleared
 * when their size changes). ANC_ENOMEM leaves the old configuration. */
int anc_drift_configure(anc_drift *d, const anc_drift_config *cfg,
                        anc_error *err);
void anc_drift_config_get(anc_drift *d, anc_drift_config *cfg);

/* ---- reference (the engine's writer side) ---- */

/* Forget the reference (before a rebuild replays every vector). */
void anc_drift_ref_reset(anc_drift *d);

/* n indexed vectors (as stored: normalised for cosine) join the reference:
 * moments, reservoir. Also appended to the write ring when as_write. */
void anc_drift_ref_add(anc_drift *d, const float *vecs, uint64_t n,
                       int as_write);

/* n vectors left the index (deleted, or replaced by a new version that
 * anc_drift_ref_add brings in). The moments and the reservoir cannot
 * drop them (a reservoir cannot un-sample), so they stay in the reference
 * until a rebuild from LMDB replaces it; this counts them to tell the
 * engine when. */
void anc_drift_ref_forget(anc_drift *d, uint64_t n);
uint64_t anc_drift_ref_forgotten(anc_drift *d);

/* Whether the reference should be rebuilt from LMDB: vectors left the
 * index (1% of the reference or more, or any in a reference of 4096 or
 * fewer) and the losses have been quiet for quiet seconds or the last
 * rebuild is max_age seconds old; or a reservoir resize
 * (anc_drift_configure) emptied the sample. now: monotonic. */
int anc_drift_rebuild_due(anc_drift *d, double now, double quiet,
                          double max_age);

/* Rebuild the reference without stopping writes:
 *   1. with no write between its commit and its anc_drift_ref_add (the
 *      engine holds its writer mutex), open an LMDB read snapshot and call
 *      anc_drift_rebuild_begin;
 *   2. release the writer mutex and feed every vector of the snapshot to
 *      anc_drift_rebuild_add; writes committed meanwhile reach the new
 *      reference through anc_drift_ref_add;
 *   3. anc_drift_rebuild_end(d, 1) swaps the new reference in (and marks
 *      it stale, so the per-query thresholds are recomputed); commit 0
 *      drops it and keeps the forgotten count for the next attempt.
 * begin: ANC_ENOMEM, or ANC_EPRECONDITION when one is already running. A
 * reservoir resize cancels a running rebuild (its add and end then do
 * nothing) and asks for a new one. */
int anc_drift_rebuild_begin(anc_drift *d, anc_error *err);
void anc_drift_rebuild_add(anc_drift *d, const float *vecs, uint64_t n);
void anc_drift_rebuild_end(anc_drift *d, int commit);

/* Reference vectors seen so far, and whether the reference changed since
 * the last anc_drift_refresh (so the engine knows to recompute scores). */
uint64_t anc_drift_ref_count(anc_drift *d);
int anc_drift_ref_stale(anc_drift *d);

/* Copy up to max reservoir vectors into out (max * dim floats); *n gets
 * how many. Used by the engine to compute reference top-1 scores. */
void anc_drift_ref_sample(anc_drift *d, float *out, uint32_t max,
                          uint32_t *n);

/* Store the reference top-1 scores (n <= ANC_DRIFT_REF_SCORES; more are
 * ignored) and recompute the per-query thresholds: the 99th percentile of
 * the reservoir's distances to the reference centroid, and the 1st
 * percentile (worst side) of the scores. Clears the stale mark. */
void anc_drift_refresh(anc_drift *d, const float *scores, uint32_t n);

/* ---- current window (the serving path) ---- */

/* Record one query vector (prepared: normalised for cosine) and its top-1
 * score (has_top1 0 when the query found nothing). *flag / *score (may be
 * NULL) get the per-query verdict: flag 1 when the vector's distance to the
 * reference centroid is above the reference's 99th percentile, or its top-1
 * score is worse than the reference's 1st percentile; score is the
 * distance divided by that 99th percentile (above 1: farther than 99% of
 * the reference). Both 0 until the first anc_drift_refresh. A few
 * microseconds: one lock, one distance, one copy. */
void anc_drift_observe_query(anc_drift *d, const float *v, float top1,
                             int has_top1, int *flag, float *score);

/* When the reference changed since the last refresh and either it has
 * been quiet for quiet seconds or its first change since that refresh is
 * max_age seconds old (a bulk load gets no refresh in its first max_age
 * seconds and then one per max_age). now: monotonic. */
int anc_drift_refresh_due(anc_drift *d, double now, double quiet,
                          double max_age);

/* The latest report computed (collection and contract as the caller set
 * them with anc_drift_last_set); 0 when none yet. */
int anc_drift_last(anc_drift *d, anc_drift_report *out);
void anc_drift_last_set(anc_drift *d, const anc_drift_report *r);
/* Queries observed so far (cheap; to skip reports when nothing moved). */
uint64_t anc_drift_queries_seen(anc_drift *d);

/* Drop the query window (tests; an operator after fixing a client). */
void anc_drift_window_reset(anc_drift *d);

/* ---- the report ---- */

/* Compute a report from snapshots of the reference and the window. Fills
 * every field of *out except collection and contract. ANC_ENOMEM when the
 * work buffers cannot be allocated. Runs for up to a few hundred ms at
 * window 1024 x dim 784; never blocks the serving path. */
int anc_drift_report_compute(anc_drift *d, anc_drift_report *out,
                             anc_error *err);

/* ---- the statistics, exposed for unit tests ---- */

/* Wasserstein-1 distance between two 1-D samples (sorted in place). */
double anc_drift_wasserstein1(double *a, uint32_t na, double *b, uint32_t nb);

/* ROC AUC of scores s (n) against labels y (0/1); ties count half. 0.5
 * when one class is empty, NaN when out of memory. tmp: unused. */
double anc_drift_auc(const float *s, const uint8_t *y, uint32_t n,
                     uint32_t *tmp);

/* MMD^2 (unbiased) between x (nx x dim) and y (ny x dim) with an RBF
 * kernel whose bandwidth is the median heuristic, and its permutation
 * p-value over perms permutations. */
int anc_drift_mmd(const float *x, uint32_t nx, const float *y, uint32_t ny,
                  uint32_t dim, uint32_t perms, uint64_t seed, double *mmd2,
                  double *pvalue, anc_error *err);

/* Cross-validated ROC AUC of a logistic regression telling x from y. */
int anc_drift_classifier_auc(const float *x, uint32_t nx, const float *y,
                             uint32_t ny, uint32_t dim, uint32_t folds,
                             uint32_t epochs, uint64_t seed, double *auc,
                             anc_error *err);

#endif /* ANC_DRIFT_H */
