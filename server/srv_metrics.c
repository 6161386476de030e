/*
 * srv_metrics.c — the Prometheus registry and /metrics text (see
 * srv_metrics.h for the design note).
 */
#include "srv_metrics.h"

#include <limits.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

/* Buckets from 100 us to 10 s, the range of a query against a flat index
 * of a few million vectors. */
static const double buckets[SRV_METRICS_NBUCKETS] = {
	0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01,
	0.025,  0.05,    0.1,    0.25,  0.5,    1.0,   10.0};

/* Slot ANC_OP__COUNT collects requests that did not decode. */
#define NOPS (ANC_OP__COUNT + 1)

static struct {
	atomic_uint_fast64_t requests[NOPS];
	atomic_uint_fast64_t errors[NOPS][ANC_ECODE_MAX];
	atomic_uint_fast64_t hist[NOPS][SRV_METRICS_NBUCKETS + 1];
	atomic_uint_fast64_t sum_ns[NOPS];
	atomic_uint_fast64_t drift_flagged, drift_queries;
} reg;

double
srv_metrics_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

void
srv_metrics_request(int op, int code, double seconds)
{
	int o = op >= 0 && op < ANC_OP__COUNT ? op : ANC_OP__COUNT;
	int b = 0;
	atomic_fetch_add_explicit(&reg.requests[o], 1, memory_order_relaxed);
	if (code > 0 && code < ANC_ECODE_MAX)
		atomic_fetch_add_explicit(&reg.errors[o][code], 1,
		                          memory_order_relaxed);
	while (b < SRV_METRICS_NBUCKETS && seconds > buckets[b])
		b++;
	atomic_fetch_add_explicit(&reg.hist[o][b], 1, memory_order_relaxed);
	if (seconds > 0)
		atomic_fetch_add_explicit(&reg.sum_ns[o],
		                          (uint_fast64_t)(seconds * 1e9),
		                          memory_order_relaxed);
}

void
srv_metrics_drift_flags(uint32_t flagged, uint32_t total)
{
	atomic_fetch_add_explicit(&reg.drift_flagged, flagged,
	                          memory_order_relaxed);
	atomic_fetch_add_explicit(&reg.drift_queries, total,
	                          memory_order_relaxed);
}

void
srv_metrics_reset(void)
{
	memset(&reg, 0, sizeof reg);
}

static uint64_t
ld(atomic_uint_fast64_t *a)
{
	return (uint64_t)atomic_load_explicit(a, memory_order_relaxed);
}

void
srv_text_printf(srv_text *w, const char *fmt, ...)
{
	va_list ap;
	int n;
	if (w->oom)
		return;
	for (;;) {
		size_t room = w->b->cap - w->b->len;
		va_start(ap, fmt);
		n = vsnprintf(w->b->cap ? (char *)w->b->data + w->b->len : NULL,
		              room, fmt, ap);
		va_end(ap);
		if (n < 0) {
			w->oom = 1;
			return;
		}
		if ((size_t)n < room) {
			w->b->len += (size_t)n;
			return;
		}
		size_t ncap = w->b->cap ? w->b->cap * 2 : 8192;
		while (ncap - w->b->len <= (size_t)n)
			ncap *= 2;
		uint8_t *p = realloc(w->b->data, ncap);
		if (p == NULL) {
			w->oom = 1;
			return;
		}
		w->b->data = p;
		w->b->cap = ncap;
	}
}

/* Short names for the renderers below. */
typedef srv_text pw;
#define pf srv_text_printf

/* Label values here are collection names ([A-Za-z0-9_.-]) and hex IDs:
 * nothing to escape. */

static void
render_requests(pw *w)
{
	pf(w, "# HELP anchorage_requests_total Requests handled, by "
	      "operation.\n# TYPE anchorage_requests_total counter\n");
	for (int o = 0; o < NOPS; o++)
		pf(w, "anchorage_requests_total{op=\"%s\"} %llu\n",
		   o < ANC_OP__COUNT ? anc_op_name((anc_op)o) : "undecodable",
		   (unsigned long long)ld(&reg.requests[o]));
	pf(w, "# HELP anchorage_errors_total Requests answered with an "
	      "error, by operation and error code.\n"
	      "# TYPE anchorage_errors_total counter\n");
	for (int o = 0; o < NOPS; o++)
		for (int c = 1; c < ANC_ECODE_MAX; c++) {
			uint64_t v = ld(&reg.errors[o][c]);
			if (v == 0)
				continue;
			pf(w, "anchorage_errors_total{op=\"%s\",code=\"%s\"} "
			      "%llu\n",
			   o < ANC_OP__COUNT ? anc_op_name((anc_op)o)
			                     : "undecodable",
			   anc_errname(c), (unsigned long long)v);
		}
	pf(w, "# HELP anchorage_request_duration_seconds Time from "
	      "request decoded to reply encoded, by operation.\n"
	      "# TYPE anchorage_request_duration_seconds histogram\n");
	for (int o = 0; o < NOPS; o++) {
		const char *name = o < ANC_OP__COUNT ? anc_op_name((anc_op)o)
		                                     : "undecodable";
		uint64_t cum = 0;
		for (int b = 0; b < SRV_METRICS_NBUCKETS; b++) {
			cum += ld(&reg.hist[o][b]);
			pf(w, "anchorage_request_duration_seconds_bucket{op=\"%s\","
			      "le=\"%g\"} %llu\n",
			   name, buckets[b], (unsigned long long)cum);
		}
		cum += ld(&reg.hist[o][SRV_METRICS_NBUCKETS]);
		pf(w, "anchorage_request_duration_seconds_bucket{op=\"%s\","
		      "le=\"+Inf\"} %llu\n",
		   name, (unsigned long long)cum);
		pf(w, "anchorage_request_duration_seconds_sum{op=\"%s\"} %.9f\n",
		   name, (double)ld(&reg.sum_ns[o]) / 1e9);
		pf(w, "anchorage_request_duration_seconds_count{op=\"%s\"} "
		      "%llu\n",
		   name, (unsigned long long)cum);
	}
	pf(w, "# HELP anchorage_query_vectors_flagged_total Query vectors "
	      "flagged as outliers against their contract's reference.\n"
	      "# TYPE anchorage_query_vectors_flagged_total counter\n"
	      "anchorage_query_vectors_flagged_total %llu\n"
	      "# HELP anchorage_query_vectors_total Query vectors answered.\n"
	      "# TYPE anchorage_query_vectors_total counter\n"
	      "anchorage_query_vectors_total %llu\n",
	   (unsigned long long)ld(&reg.drift_flagged),
	   (unsigned long long)ld(&reg.drift_queries));
}

/* anchorage_index_NAME: one gauge per contract of every collection, its
 * live vectors or (entries) its faiss index's entries. */
static void
render_index_gauge(pw *w, const anc_info *info, const char *name,
                   const char *help, int entries)
{
	pf(w, "# HELP anchorage_index_%s %s\n# TYPE anchorage_index_%s gauge\n",
	   name, help, name);
	for (uint32_t i = 0; i < info->ncollections; i++)
		for (uint32_t j = 0; j < info->collections[i].ncontracts; j++) {
			const anc_contract_info *k =
			    &info->collections[i].contracts[j];
			pf(w, "anchorage_index_%s{collection=\"%s\","
			      "contract=\"%s\"} %llu\n",
			   name, info->collections[i].name, k->id,
			   (unsigned long long)(entries ? k->index_ntotal
			                                : k->vectors));
		}
}

/* The last canary check of each contract that has probes (contract
 * check, README "Migrating"): an alert on pass == 0, or on a timestamp
 * too old, needs no cron job's exit code. Contracts never checked have
 * no sample. */
static void
render_canary(pw *w, const anc_info *info)
{
	static const char *const name[3] = {"pass", "min_cosine",
	                                    "timestamp_seconds"};
	static const char *const help[3] = {
	    "1 when every canary probe passed the last contract check, else 0.",
	    "Lowest probe cosine of the last contract check.",
	    "Unix time of the last contract check."};
	for (int m = 0; m < 3; m++) {
		pf(w, "# HELP anchorage_contract_check_%s %s\n"
		      "# TYPE anchorage_contract_check_%s gauge\n",
		   name[m], help[m], name[m]);
		for (uint32_t i = 0; i < info->ncollections; i++)
			for (uint32_t j = 0; j < info->collections[i].ncontracts;
			     j++) {
				const anc_contract_info *k =
				    &info->collections[i].contracts[j];
				/* retired: no more checks, and a
				 * frozen timestamp would alert forever */
				if (k->canaries == 0 || k->checked_at == 0 ||
				    k->state == ANC_CSTATE_RETIRED)
					continue;
				pf(w, "anchorage_contract_check_%s{collection="
				      "\"%s\",contract=\"%s\"} ",
				   name[m], info->collections[i].name, k->id);
				if (m == 0)
					pf(w, "%d\n", k->check_pass ? 1 : 0);
				else if (m == 1)
					pf(w, "%.6f\n", (double)k->check_min_cosine);
				else
					pf(w, "%llu\n",
					   (unsigned long long)k->checked_at);
			}
	}
}

static void
render_info(pw *w, const anc_info *info, const char *data_dir)
{
	char path[PATH_MAX];
	struct stat st;
	pf(w, "# HELP anchorage_last_seq Last committed write sequence.\n"
	      "# TYPE anchorage_last_seq gauge\nanchorage_last_seq %llu\n",
	   (unsigned long long)info->seq);
	pf(w, "# HELP anchorage_passages Passages per collection and state.\n"
	      "# TYPE anchorage_passages gauge\n");
	for (uint32_t i = 0; i < info->ncollections; i++) {
		const anc_collection_info *c = &info->collections[i];
		pf(w, "anchorage_passages{collection=\"%s\",state=\"live\"} "
		      "%llu\n",
		   c->name, (unsigned long long)c->live);
		pf(w, "anchorage_passages{collection=\"%s\",state=\"deleted\"} "
		      "%llu\n",
		   c->name, (unsigned long long)c->deleted);
	}
	render_index_gauge(w, info, "vectors", "Live vectors per index.", 0);
	render_index_gauge(w, info, "entries",
	                   "Entries per faiss index, stale ones included.", 1);
	render_canary(w, info);
	/* st_blocks, not st_size: the map is a sparse file of map_size
	 * bytes; what the disk holds is what matters. */
	snprintf(path, sizeof path, "%s/lmdb/data.mdb", data_dir);
	if (stat(path, &st) == 0)
		pf(w, "# HELP anchorage_lmdb_bytes Disk used by the LMDB data "
		      "file.\n# TYPE anchorage_lmdb_bytes gauge\n"
		      "anchorage_lmdb_bytes %llu\n",
		   (unsigned long long)st.st_blocks * 512ull);
}

/* The per-contract gauges of the latest drift reports after the
 * statistics: one HELP/TYPE header each, then one series per report. */
typedef enum {
	DG_FIRED,
	DG_WINDOW,
	DG_FLAGGED,
	DG_REFERENCE,
	DG_TIME,
	DG_SECONDS,
	DG_N
} dgauge;

static const struct {
	const char *name, *help;
} dgauges[DG_N] = {
    [DG_FIRED] = {"fired",
                  "Statistics past their threshold in the latest report."},
    [DG_WINDOW] = {"window_queries", "Queries in the drift window."},
    [DG_FLAGGED] = {"window_flagged", "Window queries flagged per query."},
    [DG_REFERENCE] = {"reference_vectors", "Vectors in the drift reference."},
    [DG_TIME] = {"report_timestamp_seconds",
                 "Unix time of the latest report."},
    [DG_SECONDS] = {"report_seconds",
                    "Time the latest report took to compute."}};

static void
drift_gauge(pw *w, dgauge g, const anc_drift_report *r)
{
	pf(w, "anchorage_drift_%s{collection=\"%s\",contract=\"%s\"} ",
	   dgauges[g].name, r->collection, r->contract);
	switch (g) {
	case DG_FIRED:
		pf(w, "%u\n", r->nfired);
		break;
	case DG_WINDOW:
		pf(w, "%u\n", r->window);
		break;
	case DG_FLAGGED:
		pf(w, "%u\n", r->window_flagged);
		break;
	case DG_REFERENCE:
		pf(w, "%llu\n", (unsigned long long)r->reference_count);
		break;
	case DG_TIME:
		pf(w, "%.3f\n", r->time);
		break;
	default: /* DG_SECONDS */
		pf(w, "%.6f\n", r->compute_seconds);
		break;
	}
}

/* Statistic s of every report that computed it: its value, or (threshold)
 * the threshold it is held against. */
static void
drift_stat_series(pw *w, const anc_drift_report *r, uint32_t n, int s,
                  int threshold)
{
	for (uint32_t i = 0; i < n; i++)
		if (r[i].stats[s].computed)
			pf(w, "anchorage_drift_%s%s{collection=\"%s\","
			      "contract=\"%s\"} %.9g\n",
			   anc_drift_stat_name(s), threshold ? "_threshold" : "",
			   r[i].collection, r[i].contract,
			   threshold ? r[i].stats[s].threshold
			             : r[i].stats[s].value);
}

static void
render_drift(pw *w, const anc_drift_report *r, uint32_t n)
{
	static const char *const help[ANC_DRIFT_NSTATS] = {
	    "distance between reference and window centroids",
	    "share of dimensions whose normalised Wasserstein-1 exceeds the "
	    "component threshold",
	    "MMD permutation test p-value",
	    "domain classifier cross-validated ROC AUC",
	    "share of window queries with a top-1 score worse than the "
	    "reference's 5th percentile"};
	pf(w, "# HELP anchorage_drift_status Drift status per contract: 0 ok, "
	      "1 warn, 2 drift, 3 insufficient_data.\n"
	      "# TYPE anchorage_drift_status gauge\n");
	for (uint32_t i = 0; i < n; i++)
		pf(w, "anchorage_drift_status{collection=\"%s\",contract=\"%s\","
		      "status=\"%s\"} %d\n",
		   r[i].collection, r[i].contract,
		   anc_drift_status_name(r[i].status), r[i].status);
	for (int s = 0; s < ANC_DRIFT_NSTATS; s++) {
		const char *name = anc_drift_stat_name(s);
		pf(w, "# HELP anchorage_drift_%s Drift statistic: %s.\n"
		      "# TYPE anchorage_drift_%s gauge\n",
		   name, help[s], name);
		drift_stat_series(w, r, n, s, 0);
		pf(w, "# HELP anchorage_drift_%s_threshold Threshold of "
		      "anchorage_drift_%s.\n# TYPE anchorage_drift_%s_threshold "
		      "gauge\n",
		   name, name, name);
		drift_stat_series(w, r, n, s, 1);
	}
	for (int g = 0; g < DG_N; g++) {
		pf(w, "# HELP anchorage_drift_%s %s\n"
		      "# TYPE anchorage_drift_%s gauge\n",
		   dgauges[g].name, dgauges[g].help, dgauges[g].name);
		for (uint32_t i = 0; i < n; i++)
			drift_gauge(w, (dgauge)g, &r[i]);
	}
}

/* Grounding checks and receipts (issue 8): counters kept by the engine
 * since open, and what LMDB holds now. */
static void
render_ground(pw *w, const anc_ground_stats *g)
{
	pf(w, "# HELP anchorage_receipts_total Receipt events since start: "
	      "made, read, refused as tampered, replayed.\n"
	      "# TYPE anchorage_receipts_total counter\n"
	      "anchorage_receipts_total{event=\"made\"} %llu\n"
	      "anchorage_receipts_total{event=\"read\"} %llu\n"
	      "anchorage_receipts_total{event=\"tampered\"} %llu\n"
	      "anchorage_receipts_total{event=\"replayed\"} %llu\n",
	   (unsigned long long)g->receipts_made,
	   (unsigned long long)g->receipts_read,
	   (unsigned long long)g->receipts_tampered,
	   (unsigned long long)g->replays);
	pf(w, "# HELP anchorage_receipts_stored Receipts in the store.\n"
	      "# TYPE anchorage_receipts_stored gauge\n"
	      "anchorage_receipts_stored %llu\n"
	      "# HELP anchorage_revisions_retained Passage revision texts "
	      "kept for receipts.\n# TYPE anchorage_revisions_retained gauge\n"
	      "anchorage_revisions_retained %llu\n",
	   (unsigned long long)g->receipts_stored,
	   (unsigned long long)g->revisions_retained);
	pf(w, "# HELP anchorage_verify_verdicts_total Claims checked by "
	      "verify, by verdict.\n"
	      "# TYPE anchorage_verify_verdicts_total counter\n");
	for (int v = 0; v <= ANC_VERDICT_LAST; v++)
		pf(w, "anchorage_verify_verdicts_total{verdict=\"%s\"} %llu\n",
		   anc_verdict_name(v), (unsigned long long)g->verdicts[v]);
	pf(w, "# HELP anchorage_calibrations_total Confidence calibrations "
	      "computed since start.\n"
	      "# TYPE anchorage_calibrations_total counter\n"
	      "anchorage_calibrations_total %llu\n",
	   (unsigned long long)g->calibrations);
}

/* Where a load's time goes (anc_db_write_stats): commit seconds growing
 * as fast as the clock means the writer (the disk) is the limit. */
static void
render_writes(pw *w, anc_db *db)
{
	anc_db_write_stats ws;
	anc_db_get_write_stats(db, &ws);
	pf(w, "# HELP anchorage_write_groups_total Upsert groups committed "
	      "(one LMDB transaction and fsync each).\n"
	      "# TYPE anchorage_write_groups_total counter\n"
	      "anchorage_write_groups_total %llu\n"
	      "# HELP anchorage_write_records_total Records in the committed "
	      "upsert groups.\n"
	      "# TYPE anchorage_write_records_total counter\n"
	      "anchorage_write_records_total %llu\n"
	      "# HELP anchorage_write_seconds_total Time upserts spent "
	      "committing (stage commit: transaction and fsync, one group at "
	      "a time) and updating indexes (stage index: overlaps the next "
	      "commit).\n"
	      "# TYPE anchorage_write_seconds_total counter\n"
	      "anchorage_write_seconds_total{stage=\"commit\"} %.6f\n"
	      "anchorage_write_seconds_total{stage=\"index\"} %.6f\n"
	      "# HELP anchorage_snapshot_failures_total Index snapshots that "
	      "could not be written (each retried after 30 s; a restart "
	      "replays more of LMDB meanwhile).\n"
	      "# TYPE anchorage_snapshot_failures_total counter\n"
	      "anchorage_snapshot_failures_total %llu\n",
	   (unsigned long long)ws.groups, (unsigned long long)ws.records,
	   ws.commit_seconds, ws.index_seconds,
	   (unsigned long long)ws.snapshot_failures);
}

int
srv_metrics_render(anc_db *db, const char *data_dir, anc_buf *out,
                   anc_error *err)
{
	anc_info *info = NULL;
	anc_drift_report *reps = NULL;
	uint32_t nrep = 0;
	pw w = {out, 0};
	int rv;

	if ((rv = anc_db_info(db, &info, err)) != ANC_OK)
		return rv;
	if ((rv = anc_db_drift_latest(db, &reps, &nrep, err)) != ANC_OK) {
		anc_info_free(info);
		return rv;
	}
	render_requests(&w);
	render_info(&w, info, data_dir);
	render_writes(&w, db);
	render_drift(&w, reps, nrep);
	{
		anc_ground_stats gs;
		if ((rv = anc_db_ground_stats(db, &gs, err)) != ANC_OK) {
			anc_info_free(info);
			free(reps);
			return rv;
		}
		render_ground(&w, &gs);
	}
	anc_info_free(info);
	free(reps);
	if (w.oom)
		return anc_error_set(err, ANC_ENOMEM, "metrics: out of memory");
	return ANC_OK;
}
