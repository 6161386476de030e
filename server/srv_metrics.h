/*
 * srv_metrics.h — the server's Prometheus metrics: requests and errors
 * counted per operation and per error code, latency histograms per
 * operation, and the text exposition of /metrics (which adds index sizes,
 * the LMDB size and the drift gauges read from the engine at scrape time).
 *
 * Design note
 * -----------
 * One process-wide registry, like a Prometheus client's default registry:
 * the request path (anc_server_handle, on any worker thread) records with
 * relaxed atomic increments only — no lock, no allocation — so counting
 * costs a few nanoseconds. A scrape reads the counters without stopping
 * anyone; a histogram read while a request is recorded may be one
 * observation ahead in a bucket, which Prometheus tolerates. Several
 * servers in one process (tests) share the counters; each scrape still
 * reports its own engine's sizes and drift.
 *
 * Metric names and meanings are listed in README.md, "Drift detection and
 * metrics".
 */
#ifndef ANC_SRV_METRICS_H
#define ANC_SRV_METRICS_H

#include <stddef.h>
#include <stdint.h>

#include "anc_error.h"
#include "anc_index.h"
#include "anc_proto.h"

/* Latency buckets, seconds (upper bounds; +Inf is implicit). */
#define SRV_METRICS_NBUCKETS 14

/* Monotonic seconds, for timing a request. */
double srv_metrics_now(void);

/* Record one request: op (-1 when the request did not decode), the final
 * code (0 = ok) and its duration in seconds. Thread-safe, lock-free. */
void srv_metrics_request(int op, int code, double seconds);

/* Record per-query drift flags answered (count of flagged query vectors). */
void srv_metrics_drift_flags(uint32_t flagged, uint32_t total);

/* Append the whole text exposition (format 0.0.4) for db to *out:
 * registry counters, index sizes (anc_db_info), the LMDB data file size
 * under data_dir, and the latest drift report of every contract.
 * ANC_ENOMEM, or the engine's error. */
int srv_metrics_render(anc_db *db, const char *data_dir, anc_buf *out,
                       anc_error *err);

/* Reset every counter (tests). */
void srv_metrics_reset(void);

/* Text appended to an anc_buf by printf, for every HTTP body the server
 * builds (metrics here, JSON in srv_http.c). The first allocation failure
 * sets oom and makes every later call a no-op, so a renderer checks oom
 * once at the end instead of after every line. One thread per srv_text;
 * the buffer stays the caller's. */
typedef struct srv_text {
	anc_buf *b;
	int oom;
} srv_text;

void srv_text_printf(srv_text *w, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

#endif /* ANC_SRV_METRICS_H */
