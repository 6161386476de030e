/*
 * query_bench.c — the query path against in-process faiss (issue 6), all
 * ratios measured in one run, one JSON object per line on stdout.
 *
 * What it measures
 * ----------------
 *  1. Fashion-MNIST (60000 x 784 train as base, t10k rows as queries, the
 *     exact L2 top-100 ground truth of the shared data folder):
 * *     - an HNSW contract (M 16, efConstruction 100) loaded through a real
 *       anchorage-server; the server is then stopped (it snapshots) and
 *       the snapshot's faiss payload is read by this process, so
 *       "in-process faiss" searches the very same graph with the same
 *       library and parameters; the server is started again on the data;
 *     - in-process faiss, one thread, nq 1 per call: QPS, p50, p99,
 *       recall@10; and with one thread per core ("both cores");
 *     - Anchorage over ipc:// and tcp://127.0.0.1 with 1, 4 and 16
 *       concurrent clients (threads, each with its own anc_client, nq 1):
 *       QPS, p50, p99, recall@10, and the ratio to in-process faiss;
 *     - an efSearch sweep, in-process and over ipc:// (1 client): the
 *       recall/QPS curve;
 *     - ping round trips (ipc, tcp) p50/p99;
 *     - the transport floor: a bare nng REQ/REP echo (this binary run as
 *       a separate process with --nng-echo, laid out like the server:
 *       worker threads with nng contexts and aio_wait) at Anchorage's own
 *       ping and query message sizes, ipc and tcp ("nng_floor"), asked
 *       by nng's REQ socket and by the client library's anc_sp;
 *     - the machine's own floor: the same sizes between two processes
 *       over a Unix socket pair with blocking read and write, no
 *       messaging library ("raw_floor");
 *     - where the added latency goes ("split_inprocess", "added_latency"):
 *       with the server stopped the bench opens its data itself and times,
 *       query by query, in-process faiss, the client's encoding,
 *       anc_server_handle (everything a worker does between nng's receive
 *       and send) and the client's decoding; the single-client added
 *       latency is then split into nng floor + server overhead + client
 *       codec + the rest (thread hand-offs and scheduling between
 *       processes, which only the difference shows);
 *     - CPU: each client thread's CPU time (CLOCK_THREAD_CPUTIME_ID) and
 *       the server process's (/proc/PID/stat) and context switches (all
 *       its threads) over every run, per request; "throughput_16" gives
 *       the raw 16-client ratio and the ratio on the cores the client
 *       threads leave, and the CPU efficiency (faiss CPU per query /
 *       server CPU per request). The 1- and 16-client runs are compared
 *       with in-process faiss measured right before and after them;
 *     - p99 at 70% of the 16-client peak (open loop: each client sends
 *       on a fixed schedule, latency counted from the scheduled time);
 *     - batched exact search: 256 queries in one request against a flat
 *       contract vs faiss's own IndexFlat search of the same 256;
 *     - hnsw_sq8 vs hnsw at equal ef (recall), ivf_flat and ivf_pq; memory
 *       per vector of every kind: the server's estimate (contract info)
 *       and the snapshot's faiss payload / entries (measured).
 *  2. Scaling on synthetic clustered data (128-d Gaussian mixture, 100
 *     clusters, generated here; ground truth by brute force): build time
 *     (load until acknowledged, HNSW M 16 efConstruction 100) and query
 *     p50/p99/recall@10 at 10k and 100k vectors (1M with --big).
 *
 * usage: query_bench [--quick] [--big] [--focus] [--scaling-only]
 *                    [--workers N]
 *                    [--server-bin PATH] [--data DIR] [--seconds S]
 *                    [--port P]
 * --quick: 20k base vectors, fewer queries, shorter runs, 10k scaling only
 * (about a minute). --focus: only the goal runs over ipc (in-process
 * faiss, the split, the nng floor, 1 and 16 clients, p99 at 70%), for
 * profiling and A/B comparisons of the server. --scaling-only: only part
 * 2 (10k and 100k, and 1M with --big). --workers N: passed to the server
 * (default: its own default). --port P: the server's tcp:// port, P + 1
 * the echo server's (default: from the pid); the temporary directory is
 * under $TMPDIR (default /tmp). The server binary defaults to
 * anchorage-server next to this executable. Started with --nosync --http off --drift-off --quiet in
 * a temporary data directory that is removed at the end.
 *
 * Nothing is asserted: the README's "Performance" section lists the goals
 * next to a measured run.
 */
#include <dirent.h>
#include <errno.h>
#include <libgen.h>
#include <limits.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <faiss/c_api/AutoTune_c.h>
#include <faiss/c_api/Index_c.h>
#include <faiss/c_api/IndexFlat_c.h>
#include <faiss/c_api/MetaIndexes_c.h>
#include <faiss/c_api/error_c.h>
#include <faiss/c_api/index_factory_c.h>
#include <faiss/c_api/index_io_c.h>
#include <nng/nng.h>
#include <nng/protocol/reqrep0/rep.h>
#include <nng/protocol/reqrep0/req.h>
#include <omp.h>
#include <zlib.h>

#include "anc_client.h"
#include "anc_index.h"
#include "anc_sp.h"
#include "faiss_c_ext.h"
#include "srv_server.h"

#ifndef ANC_DATA_DIR
#define ANC_DATA_DIR "../shared/data"
#endif

#define FM_DIM 784
#define SNAP_HDR 128
#define K 10

/* ---- small helpers ---------------------------------------------------------- */

static double
now_s(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

/* CPU seconds of the calling thread. */
static double
thread_cpu_s(void)
{
	struct timespec t;
	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
	return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

/* CPU seconds (user + system) and context switches (voluntary +
 * involuntary, all threads) of process pid so far, from /proc; zeros when
 * it cannot be read. Used to charge a run's CPU to the server. */
typedef struct {
	double cpu_s;
	uint64_t csw;
} proc_stat;

static proc_stat
proc_sample(pid_t pid)
{
	proc_stat ps = {0, 0};
	char path[64], line[256];
	unsigned long ut = 0, st = 0;
	long tick = sysconf(_SC_CLK_TCK);
	FILE *f;
	DIR *d;
	struct dirent *de;

	if (pid <= 0)
		return ps;
	snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
	if ((f = fopen(path, "r")) != NULL) {
		/* comm (field 2) has no spaces here: anchorage-server,
		 * query_bench */
		if (fscanf(f, "%*d %*s %*c %*d %*d %*d %*d %*d %*u %*u %*u %*u "
		              "%*u %lu %lu", &ut, &st) == 2 && tick > 0)
			ps.cpu_s = (double)(ut + st) / (double)tick;
		fclose(f);
	}
	snprintf(path, sizeof path, "/proc/%d/task", (int)pid);
	if ((d = opendir(path)) == NULL)
		return ps;
	while ((de = readdir(d)) != NULL) {
		char sp[320];
		if (de->d_name[0] == '.')
			continue;
		snprintf(sp, sizeof sp, "/proc/%d/task/%s/status", (int)pid,
		         de->d_name);
		if ((f = fopen(sp, "r")) == NULL)
			continue;
		while (fgets(line, sizeof line, f) != NULL) {
			unsigned long long v;
			if (sscanf(line, "voluntary_ctxt_switches: %llu", &v) == 1 ||
			    sscanf(line, "nonvoluntary_ctxt_switches: %llu", &v) == 1)
				ps.csw += v;
		}
		fclose(f);
	}
	closedir(d);
	return ps;
}

static void
die(const char *what, const char *detail)
{
	fprintf(stderr, "query_bench: %s%s%s\n", what, detail ? ": " : "",
	        detail ? detail : "");
	exit(1);
}

static void *
xmalloc(size_t n)
{
	void *p = malloc(n ? n : 1);
	if (p == NULL)
		die("out of memory", NULL);
	return p;
}

static int
dcmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

/* Percentile p (0..100) of n latencies (sorted in place), microseconds. */
static double
pct(double *lat, size_t n, double p)
{
	size_t i;
	if (n == 0)
		return 0;
	qsort(lat, n, sizeof *lat, dcmp);
	i = (size_t)(p / 100.0 * (double)(n - 1) + 0.5);
	return lat[i] * 1e6;
}

static uint32_t
be32(const unsigned char *b)
{
	return (uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 |
	       (uint32_t)b[2] << 8 | b[3];
}

static float *
idx_read(const char *path, uint32_t want, uint32_t *n)
{
	gzFile gz = gzopen(path, "rb");
	unsigned char hdr[16], *u8;
	float *f;
	uint32_t rows;
	size_t total;

	if (gz == NULL)
		die("cannot open", path);
	if (gzread(gz, hdr, 16) != 16 || be32(hdr) != 0x803 ||
	    be32(hdr + 8) * be32(hdr + 12) != FM_DIM)
		die("not a 28x28 IDX images file", path);
	rows = be32(hdr + 4);
	if (want < rows)
		rows = want;
	total = (size_t)rows * FM_DIM;
	u8 = xmalloc(total);
	f = xmalloc(total * sizeof *f);
	if (gzread(gz, u8, (unsigned)total) != (int)total)
		die("truncated", path);
	gzclose(gz);
	for (size_t i = 0; i < total; i++)
		f[i] = (float)u8[i];
	free(u8);
	*n = rows;
	return f;
}

/* Ground truth rows [0, nq) of an .ivecs file with >= 10 columns. */
static int32_t *
ivecs_read(const char *path, uint32_t nq, uint32_t *dim)
{
	FILE *fp = fopen(path, "rb");
	int32_t d, *out = NULL;
	if (fp == NULL)
		die("cannot open", path);
	for (uint32_t i = 0; i < nq; i++) {
		if (fread(&d, 4, 1, fp) != 1 || d < K || d > 10000)
			die("bad ivecs", path);
		if (out == NULL)
			out = xmalloc((size_t)nq * (size_t)d * 4);
		if (fread(out + (size_t)i * d, 4, (size_t)d, fp) != (size_t)d)
			die("truncated ivecs", path);
	}
	fclose(fp);
	*dim = (uint32_t)d;
	return out;
}

/* ---- the data set under test ----------------------------------------------------- */

typedef struct {
	const char *name;
	uint32_t dim, nb, nq;
	float *base, *queries;
	int32_t *gt; /* nq x gdim, row ids of base */
	uint32_t gdim;
} dataset;

/* Row id of a hit: sources are the decimal row. */
static long
hit_row(const anc_hit *h)
{
	char *end;
	long r = strtol(h->source, &end, 10);
	return end != h->source && *end == '\0' ? r : -1;
}

static uint32_t
hits_in_gt(const dataset *ds, uint32_t q, const long *rows, uint32_t n)
{
	uint32_t found = 0;
	for (uint32_t i = 0; i < n && i < K; i++)
		for (uint32_t g = 0; g < K; g++)
			if (rows[i] >= 0 && ds->gt[(size_t)q * ds->gdim + g] == rows[i]) {
				found++;
				break;
			}
	return found;
}

/* ---- the server ------------------------------------------------------------------ */

typedef struct {
	pid_t pid;
	char bin[PATH_MAX];
	char dir[PATH_MAX];
	char ipc[PATH_MAX + 16];
	char tcp[64];
	const char *workers; /* --workers for the server, or NULL */
} server;

/* The running server, whose CPU and context switches cl_run charges. */
static pid_t stat_pid;

/* Wait until the server has used no more than a tick of CPU for 3 s in
 * a row (at most 60 s): a server that has just started or loaded does
 * background work of its own (grounding's calibration looks at every
 * contract 2 s after start-up and after writes, an O(n^2) pass over a
 * sample), which would otherwise run inside the next measurement. */
static void
server_settle(pid_t pid)
{
	double last = proc_sample(pid).cpu_s, quiet = 0, waited = 0;
	while (quiet < 3.0 && waited < 60.0) {
		usleep(250000);
		waited += 0.25;
		double now = proc_sample(pid).cpu_s;
		quiet = now - last <= 0.011 ? quiet + 0.25 : 0;
		last = now;
	}
	if (quiet < 3.0)
		fprintf(stderr, "query_bench: the server is still busy after "
		                "60 s; measuring anyway\n");
}

static void
server_start(server *s)
{
	char log[PATH_MAX + 16];
	const char *argv[20] = {s->bin, "--data", s->dir, "--listen", s->ipc,
	                        "--listen", s->tcp, "--nosync", "--http", "off",
	                        "--drift-off", "--quiet", "--snapshot-every",
	                        "0"};
	int argn = 14;
	/* unset options are left out: the server's own defaults */
	if (s->workers != NULL) {
		argv[argn++] = "--workers";
		argv[argn++] = s->workers;
	}
	argv[argn] = NULL;
	snprintf(log, sizeof log, "%s.log", s->dir);
	if ((s->pid = fork()) < 0)
		die("fork", strerror(errno));
	if (s->pid == 0) {
		FILE *f = freopen(log, "a", stderr);
		(void)f;
		execv(s->bin, (char *const *)argv);
		_exit(127);
	}
	for (int i = 0; i < 600; i++) {
		anc_client *c = NULL;
		anc_resp *r = NULL;
		anc_error err;
		int st;
		if (waitpid(s->pid, &st, WNOHANG) == s->pid)
			die("server exited; see", log);
		anc_client_options o;
		anc_client_options_default(&o);
		o.timeout_ms = 2000;
		if (anc_client_open(s->ipc, &o, &c, &err) == 0 &&
		    anc_client_ping(c, &r, &err) == 0) {
			anc_resp_free(r);
			anc_client_close(c);
			stat_pid = s->pid;
			server_settle(s->pid);
			return;
		}
		anc_client_close(c);
		usleep(100000);
	}
	die("server did not answer; see", log);
}

static void
server_stop(server *s)
{
	int st;
	if (s->pid <= 0)
		return;
	stat_pid = 0;
	kill(s->pid, SIGTERM);
	if (waitpid(s->pid, &st, 0) != s->pid || !WIFEXITED(st) ||
	    WEXITSTATUS(st) != 0)
		die("server did not stop cleanly", s->dir);
	s->pid = 0;
}

/* --port P: the server's tcp:// port, P + 1 the echo server's (0: from
 * the pid). */
static int port_base;

/* 1: clients make their calls through nng's REQ socket (the "-nng" rows),
 * not the client library's own SP connection (anc_sp.h). */
static int use_nng;

static anc_client *
client_open(const char *url)
{
	anc_client *c = NULL;
	anc_client_options o;
	anc_error err;
	anc_client_options_default(&o);
	o.timeout_ms = 120000;
	o.use_nng = use_nng;
	if (anc_client_open(url, &o, &c, &err) != 0)
		die("client", err.msg);
	return c;
}

static void
must(int rc, const anc_error *err, const char *what)
{
	if (rc != 0)
		die(what, err->msg);
}

/* Register contract c in collection coll and load rows [0, n) of base
 * (sources = row). Returns the seconds until the last batch was
 * acknowledged; id_out gets the contract ID. */
static double
load(anc_client *cl, const char *coll, const anc_contract *c,
     const float *base, uint32_t n, uint32_t dim, anc_contract_id_str id_out)
{
	enum { BATCH = 1000 };
	anc_resp *r = NULL;
	anc_error err;
	anc_record *recs = xmalloc(BATCH * sizeof *recs);
	char (*keys)[16] = xmalloc(BATCH * 16);
	double t0;

	must(anc_client_collection_create(cl, coll, &r, &err), &err, coll);
	anc_resp_free(r);
	must(anc_client_contract_register(cl, coll, c, &r, &err), &err, coll);
	memcpy(id_out, r->u.contract_register.id, sizeof(anc_contract_id_str));
	anc_resp_free(r);
	t0 = now_s();
	for (uint32_t b = 0; b < n; b += BATCH) {
		uint32_t m = n - b < BATCH ? n - b : BATCH;
		for (uint32_t i = 0; i < m; i++) {
			snprintf(keys[i], 16, "%u", b + i);
			recs[i] = (anc_record){.source = keys[i], .chunk = "",
			                       .vec = base + (size_t)(b + i) * dim,
			                       .dim = dim};
		}
		must(anc_client_upsert(cl, coll, id_out, recs, m, &r, &err), &err,
		     "upsert");
		anc_resp_free(r);
	}
	free(recs);
	free(keys);
	return now_s() - t0;
}

static void
contract_make(anc_contract *c, const char *name, uint32_t dim,
              anc_index_kind kind, uint32_t m, uint32_t efc, uint32_t efs)
{
	anc_contract_init(c);
	snprintf(c->name, sizeof c->name, "%s", name);
	snprintf(c->model, sizeof c->model, "bench");
	snprintf(c->revision, sizeof c->revision, "1");
	c->dim = dim;
	c->metric = ANC_METRIC_L2;
	c->normalize = 0;
	c->index.kind = kind;
	if (kind == ANC_INDEX_HNSW || kind == ANC_INDEX_HNSW_SQ8) {
		c->index.m = m;
		c->index.ef_construction = efc;
		c->index.ef_search = efs;
	}
}

/* The contract's info entry (memory estimate, trained flag). */
static int
contract_info(anc_client *cl, const char *coll, anc_contract_info *out)
{
	anc_resp *r = NULL;
	anc_error err;
	int found = 0;
	must(anc_client_info(cl, &r, &err), &err, "info");
	for (uint32_t i = 0; i < r->u.info.ncollections; i++)
		if (strcmp(r->u.info.collections[i].name, coll) == 0 &&
		    r->u.info.collections[i].ncontracts > 0) {
			*out = r->u.info.collections[i].contracts[0];
			found = 1;
		}
	anc_resp_free(r);
	return found;
}

/* Wait until a trained kind is trained and its build has caught up. */
static double
wait_trained(anc_client *cl, const char *coll, uint32_t n, double t0)
{
	anc_contract_info ci;
	for (int i = 0; i < 36000; i++) {
		if (contract_info(cl, coll, &ci) && ci.trained &&
		    ci.index_ntotal >= n)
			return now_s() - t0;
		usleep(50000);
	}
	die("index never trained", coll);
	return 0;
}

/* Bytes per entry of the faiss payload of a snapshot file. */
static double
snap_bytes_per_vector(const char *dir, const char *idstr, uint64_t ntotal)
{
	char path[PATH_MAX + 64];
	struct stat sb;
	for (int cid = 1; cid < 64; cid++) {
		snprintf(path, sizeof path, "%s/snapshots/%d-%s.faiss", dir, cid,
		         idstr);
		if (stat(path, &sb) == 0)
			return ntotal ? (double)(sb.st_size - SNAP_HDR) / ntotal : 0;
	}
	return -1;
}

static FaissIndex *
snap_read(const char *dir, const char *idstr)
{
	char path[PATH_MAX + 64];
	FaissIndex *idx = NULL;
	for (int cid = 1; cid < 64; cid++) {
		FILE *f;
		snprintf(path, sizeof path, "%s/snapshots/%d-%s.faiss", dir, cid,
		         idstr);
		if ((f = fopen(path, "rb")) == NULL)
			continue;
		if (fseek(f, SNAP_HDR, SEEK_SET) != 0 ||
		    faiss_read_index(f, 0, &idx) != 0)
			die("cannot read snapshot", path);
		fclose(f);
		return idx;
	}
	die("no snapshot for", idstr);
	return NULL;
}

/* ---- in-process faiss --------------------------------------------------------- */

/* The snapshot's faiss labels are Anchorage's write sequences; rows were
 * loaded in order, so the IDMap2's id_map (insertion order) gives each
 * row's label in increasing order, and a label's row is found by binary
 * search. */
static const idx_t *label_of_row;
static size_t nlabels;

static long
row_of_label(idx_t lab)
{
	size_t lo = 0, hi = nlabels;
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		if (label_of_row[mid] < lab)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < nlabels && label_of_row[lo] == lab ? (long)lo : -1;
}

typedef struct {
	const dataset *ds;
	FaissIndex *idx;
	FaissSearchParameters *sp;
	uint32_t q0, step, nq; /* queries q0, q0+step, ... */
	double *lat;
	size_t nlat;
	uint32_t found;
	double t0, t1, cpu;
} faiss_job;

static void *
faiss_worker(void *arg)
{
	faiss_job *j = arg;
	float d[K];
	idx_t l[K];
	long rows[K];
	double c0;
	omp_set_num_threads(1);
	c0 = thread_cpu_s();
	j->t0 = now_s();
	for (uint32_t i = 0; i < j->nq; i++) {
		uint32_t q = (j->q0 + i * j->step) % j->ds->nq;
		double t = now_s();
		if (faiss_Index_search_with_params(j->idx, 1,
		        j->ds->queries + (size_t)q * j->ds->dim, K, j->sp, d,
		        l) != 0)
			die("faiss search", faiss_get_last_error());
		j->lat[j->nlat++] = now_s() - t;
		for (int r = 0; r < K; r++)
			rows[r] = l[r] < 0 ? -1 : row_of_label(l[r]);
		j->found += hits_in_gt(j->ds, q, rows, K);
	}
	j->t1 = now_s();
	j->cpu = thread_cpu_s() - c0;
	return NULL;
}

/* CPU accounting (issue 6, point 3): client_cpu_s is the CPU the client
 * threads of this process used (encode, decode, nng's calls on their
 * stack; not nng's own I/O threads), client_proc_cpu_s what the whole
 * process used meanwhile (those threads and nng's), server_cpu_s what the
 * server process used in the same interval (or faiss's own threads
 * in-process). */
typedef struct {
	double qps, p50, p99, recall;
	double wall_s, client_cpu_s, client_proc_cpu_s, server_cpu_s;
	uint64_t n, server_csw;
} result;

/* nthreads threads, each searching per_thread single queries. */
static result
faiss_run(const dataset *ds, FaissIndex *idx, uint32_t ef, int nthreads,
          uint32_t per_thread)
{
	faiss_job *jobs = xmalloc(nthreads * sizeof *jobs);
	pthread_t *thr = xmalloc(nthreads * sizeof *thr);
	double *all = xmalloc((size_t)nthreads * per_thread * sizeof *all);
	FaissSearchParametersHNSW *sp = NULL;
	size_t n = 0;
	uint64_t found = 0;
	double t0 = 1e300, t1 = 0;
	result r;

	if (ef != 0 && faiss_SearchParametersHNSW_new_with(&sp, NULL, (int)ef))
		die("search params", faiss_get_last_error());
	for (int t = 0; t < nthreads; t++) {
		jobs[t] = (faiss_job){ds, idx, sp, (uint32_t)t, (uint32_t)nthreads,
		                      per_thread, all + (size_t)t * per_thread, 0,
		                      0, 0, 0, 0};
		pthread_create(&thr[t], NULL, faiss_worker, &jobs[t]);
	}
	memset(&r, 0, sizeof r);
	for (int t = 0; t < nthreads; t++) {
		pthread_join(thr[t], NULL);
		n += jobs[t].nlat;
		r.server_cpu_s += jobs[t].cpu;
		found += jobs[t].found;
		if (jobs[t].t0 < t0)
			t0 = jobs[t].t0;
		if (jobs[t].t1 > t1)
			t1 = jobs[t].t1;
	}
	r.qps = n / (t1 - t0);
	r.wall_s = t1 - t0;
	r.n = n;
	r.recall = found / (double)(n * K);
	r.p50 = pct(all, n, 50);
	r.p99 = pct(all, n, 99);
	faiss_SearchParameters_free(sp);
	free(jobs);
	free(thr);
	free(all);
	return r;
}

/* ---- Anchorage clients ------------------------------------------------------ */

typedef struct {
	const dataset *ds;
	const char *url, *coll, *cid;
	anc_client_query_opts opt;
	uint32_t q0, step, nq;
	double interval; /* open loop: seconds between sends; 0 closed */
	double start;    /* shared start time (open loop) */
	double *lat;
	size_t nlat;
	uint64_t found, errors;
	double t0, t1, cpu;
	int ping;
} cl_job;

static void *
cl_worker(void *arg)
{
	cl_job *j = arg;
	anc_client *c = client_open(j->url);
	long rows[K];
	double c0 = thread_cpu_s();
	j->t0 = now_s();
	for (uint32_t i = 0; i < j->nq; i++) {
		uint32_t q = (j->q0 + i * j->step) % j->ds->nq;
		anc_resp *r = NULL;
		anc_error err;
		double sched = 0, t;
		int rc;
		if (j->interval > 0) {
			sched = j->start + i * j->interval;
			while ((t = now_s()) < sched)
				if (sched - t > 200e-6)
					usleep((useconds_t)((sched - t) * 1e6 - 100));
		}
		t = now_s();
		if (j->ping)
			rc = anc_client_ping(c, &r, &err);
		else
			rc = anc_client_query2(c, j->coll, j->cid,
			        j->ds->queries + (size_t)q * j->ds->dim, 1,
			        j->ds->dim, K, 0, &j->opt, &r, &err);
		double end = now_s();
		j->lat[j->nlat++] = end - (j->interval > 0 ? sched : t);
		if (rc != 0) {
			j->errors++;
			if (j->errors == 1)
				fprintf(stderr, "query_bench: %s\n", err.msg);
		} else if (!j->ping) {
			const anc_hitlist *hl = &r->u.query.lists[0];
			for (uint32_t h = 0; h < K; h++)
				rows[h] = h < hl->nhits ? hit_row(&hl->hits[h]) : -1;
			j->found += hits_in_gt(j->ds, q, rows, K);
		}
		anc_resp_free(r);
	}
	j->t1 = now_s();
	j->cpu = thread_cpu_s() - c0;
	anc_client_close(c);
	return NULL;
}

static result
cl_run(const dataset *ds, const char *url, const char *coll, const char *cid,
       uint32_t ef, int nclients, uint32_t per_client, double rate, int ping,
       uint64_t *errors)
{
	cl_job *jobs = xmalloc(nclients * sizeof *jobs);
	pthread_t *thr = xmalloc(nclients * sizeof *thr);
	double *all = xmalloc((size_t)nclients * per_client * sizeof *all);
	double t0 = 1e300, t1 = 0, start = now_s() + 0.2;
	uint64_t found = 0, n = 0;
	proc_stat p0 = proc_sample(stat_pid), p1;
	proc_stat c0 = proc_sample(getpid()), c1;
	result r;

	memset(&r, 0, sizeof r);
	*errors = 0;
	for (int t = 0; t < nclients; t++) {
		memset(&jobs[t], 0, sizeof jobs[t]);
		jobs[t].ds = ds;
		jobs[t].url = url;
		jobs[t].coll = coll;
		jobs[t].cid = cid;
		jobs[t].opt.ef = ef;
		jobs[t].q0 = (uint32_t)t * 7919u;
		jobs[t].step = 1;
		jobs[t].nq = per_client;
		jobs[t].interval = rate > 0 ? nclients / rate : 0;
		jobs[t].start = start + (rate > 0 ? t / rate : 0);
		jobs[t].lat = all + (size_t)t * per_client;
		jobs[t].ping = ping;
		pthread_create(&thr[t], NULL, cl_worker, &jobs[t]);
	}
	for (int t = 0; t < nclients; t++) {
		pthread_join(thr[t], NULL);
		found += jobs[t].found;
		*errors += jobs[t].errors;
		if (jobs[t].t0 < t0)
			t0 = jobs[t].t0;
		if (jobs[t].t1 > t1)
			t1 = jobs[t].t1;
		n += jobs[t].nlat;
		r.client_cpu_s += jobs[t].cpu;
	}
	p1 = proc_sample(stat_pid);
	c1 = proc_sample(getpid());
	r.client_proc_cpu_s = c1.cpu_s - c0.cpu_s;
	/* The server's sample also covers connection set-up and the 0.2 s
	 * start delay: negligible against seconds of searching. */
	r.server_cpu_s = p1.cpu_s - p0.cpu_s;
	r.server_csw = p1.csw - p0.csw;
	r.n = n;
	r.wall_s = t1 - t0;
	r.qps = n / (t1 - t0);
	r.recall = ping ? 0 : found / (double)(n * K);
	r.p50 = pct(all, n, 50);
	r.p99 = pct(all, n, 99);
	free(jobs);
	free(thr);
	free(all);
	return r;
}

static void
print_result(const char *bench, const char *where, int clients, uint32_t ef,
             result r, double ratio, uint64_t errors)
{
	printf("{\"bench\":\"%s\",\"where\":\"%s\",\"clients\":%d,\"ef\":%u,"
	       "\"qps\":%.1f,\"p50_us\":%.1f,\"p99_us\":%.1f,\"recall10\":%.4f",
	       bench, where, clients, ef, r.qps, r.p50, r.p99, r.recall);
	if (ratio > 0)
		printf(",\"ratio_to_faiss\":%.3f", ratio);
	if (r.n > 0 && r.wall_s > 0 && r.client_cpu_s == 0)
		printf(",\"faiss_cpu_us_per_query\":%.1f",
		       r.server_cpu_s / r.n * 1e6);
	else if (r.n > 0 && r.wall_s > 0)
		printf(",\"client_cpu_us_per_req\":%.1f,\"client_cores\":%.2f,"
		       "\"server_cpu_us_per_req\":%.1f,\"server_cores\":%.2f",
		       r.client_cpu_s / r.n * 1e6, r.client_cpu_s / r.wall_s,
		       r.server_cpu_s / r.n * 1e6, r.server_cpu_s / r.wall_s);
	if (r.n > 0 && r.server_csw > 0)
		printf(",\"server_ctxsw_per_req\":%.1f",
		       (double)r.server_csw / r.n);
	printf(",\"errors\":%llu}\n", (unsigned long long)errors);
	fflush(stdout);
}


/* ---- the transport floor: bare nng REQ/REP -------------------------------------- */

/*
 * A bare nng 1.5.2 REP server with the server's own layout: a separate
 * process (this binary run with --nng-echo, so nothing of the parent's nng
 * state is inherited), ECHO_WORKERS threads each with an nng context and
 * an aio, "receive; aio_wait; send; aio_wait" as in srv_server.c. It
 * answers each request with a reply of the size named by the request's
 * first 4 bytes, so the round trip carries Anchorage's exact message sizes
 * both ways. The client side is anc_client's: nng_send of a caller
 * buffer, nng_recv with NNG_FLAG_ALLOC, one REQ socket per thread.
 */
#define ECHO_WORKERS 4

typedef struct {
	nng_ctx ctx;
	nng_aio *aio;
} echo_worker;

static void *
echo_main(void *arg)
{
	echo_worker *w = arg;
	for (;;) {
		nng_msg *m;
		uint32_t want = 0;
		nng_ctx_recv(w->ctx, w->aio);
		nng_aio_wait(w->aio);
		if (nng_aio_result(w->aio) != 0)
			return NULL;
		m = nng_aio_get_msg(w->aio);
		if (nng_msg_len(m) >= 4)
			memcpy(&want, nng_msg_body(m), 4);
		if (want > (1u << 20))
			want = 0;
		if (nng_msg_realloc(m, want) != 0) {
			nng_msg_free(m);
			continue;
		}
		nng_aio_set_msg(w->aio, m);
		nng_ctx_send(w->ctx, w->aio);
		nng_aio_wait(w->aio);
		if (nng_aio_result(w->aio) != 0)
			nng_msg_free(nng_aio_get_msg(w->aio));
	}
}

/* query_bench --nng-echo URL...: serve until killed. */
static int
echo_serve(int nurl, char **urls)
{
	nng_socket sock;
	echo_worker w[ECHO_WORKERS];
	pthread_t thr[ECHO_WORKERS];
	int rv;
	if ((rv = nng_rep0_open(&sock)) != 0)
		die("nng_rep0_open", nng_strerror(rv));
	for (int i = 0; i < nurl; i++)
		if ((rv = nng_listen(sock, urls[i], NULL, 0)) != 0)
			die(urls[i], nng_strerror(rv));
	for (int i = 0; i < ECHO_WORKERS; i++) {
		if ((rv = nng_ctx_open(&w[i].ctx, sock)) != 0 ||
		    (rv = nng_aio_alloc(&w[i].aio, NULL, NULL)) != 0)
			die("nng echo worker", nng_strerror(rv));
		pthread_create(&thr[i], NULL, echo_main, &w[i]);
	}
	for (int i = 0; i < ECHO_WORKERS; i++)
		pthread_join(thr[i], NULL);
	return 0;
}

/* One echo round trip: over nng's REQ socket, or (sp non-NULL) the
 * client library's own SP connection. */
static int
echo_once(nng_socket sock, anc_sp *sp, const void *buf, size_t len)
{
	void *rep;
	size_t rl;
	int rv;

	if (sp != NULL) {
		const uint8_t *b;
		anc_error err;
		return anc_sp_call(sp, buf, len, 10000, &b, &rl, &err);
	}
	if ((rv = nng_send(sock, (void *)buf, len, 0)) != 0 ||
	    (rv = nng_recv(sock, &rep, &rl, NNG_FLAG_ALLOC)) != 0)
		return rv;
	nng_free(rep, rl);
	return 0;
}

/* Round trips of req_len-byte requests answered by rep_len bytes, with
 * nng's REQ socket (sp 0) or anc_sp (sp 1). */
static result
echo_run(const char *url, int use_sp, size_t req_len, size_t rep_len,
         uint32_t n)
{
	nng_socket sock = NNG_SOCKET_INITIALIZER;
	anc_sp sp, *spp = NULL;
	anc_error err;
	unsigned char *buf = xmalloc(req_len < 4 ? 4 : req_len);
	double *lat = xmalloc((size_t)n * sizeof *lat), t0, c0;
	uint32_t want = (uint32_t)rep_len;
	proc_stat p0, p1;
	result r;
	int rv;

	memset(&r, 0, sizeof r);
	memset(buf, 0xab, req_len < 4 ? 4 : req_len);
	memcpy(buf, &want, 4);
	if (use_sp) {
		if (anc_sp_init(&sp, url, 1u << 20, &err) != 0)
			die("sp echo", err.msg);
		spp = &sp;
	} else if ((rv = nng_req0_open(&sock)) != 0 ||
	           (rv = nng_socket_set_ms(sock, NNG_OPT_RECVTIMEO, 10000)) !=
	               0 ||
	           (rv = nng_dial(sock, url, NULL, 0)) != 0) {
		die("nng echo dial", nng_strerror(rv));
	}
	for (uint32_t i = 0; i < 200; i++) /* warm up */
		if (echo_once(sock, spp, buf, req_len) != 0)
			die("echo", url);
	p0 = proc_sample(stat_pid);
	c0 = thread_cpu_s();
	t0 = now_s();
	for (uint32_t i = 0; i < n; i++) {
		double t = now_s();
		if (echo_once(sock, spp, buf, req_len) != 0)
			die("echo", url);
		lat[i] = now_s() - t;
	}
	r.wall_s = now_s() - t0;
	r.client_cpu_s = thread_cpu_s() - c0;
	p1 = proc_sample(stat_pid);
	r.server_cpu_s = p1.cpu_s - p0.cpu_s;
	r.server_csw = p1.csw - p0.csw;
	r.n = n;
	r.qps = n / r.wall_s;
	r.p50 = pct(lat, n, 50);
	r.p99 = pct(lat, n, 99);
	if (spp != NULL)
		anc_sp_fini(spp);
	else
		nng_close(sock);
	free(buf);
	free(lat);
	return r;
}

/* Start the echo server process on ipc and tcp, measure each message size
 * pair over both, stop it. sizes: pairs of (request, reply) bytes with a
 * name each. */
typedef struct {
	const char *name;
	size_t req, rep;
} msg_size;

static void
bench_nng_floor(const char *self, const char *tmpdir, const msg_size *ms,
                int nms, uint32_t n, double floor_p50[][4])
{
	char ipc[PATH_MAX + 32], tcp[64];
	pid_t pid, server_pid = stat_pid;
	snprintf(ipc, sizeof ipc, "ipc://%s/echo.sock", tmpdir);
	snprintf(tcp, sizeof tcp, "tcp://127.0.0.1:%d",
	         port_base ? port_base + 1 : 37000 + (int)(getpid() % 20000));
	if ((pid = fork()) < 0)
		die("fork", strerror(errno));
	if (pid == 0) {
		/* a bench that dies (die() exits) takes its echo server along */
		(void)prctl(PR_SET_PDEATHSIG, SIGKILL);
		execl(self, self, "--nng-echo", ipc, tcp, (char *)NULL);
		_exit(127);
	}
	/* the listener is up when a dial succeeds */
	for (int i = 0;; i++) {
		nng_socket t;
		int rv = nng_req0_open(&t);
		if (rv == 0)
			rv = nng_dial(t, ipc, NULL, 0);
		nng_close(t);
		if (rv == 0)
			break;
		if (i > 100)
			die("nng echo server did not start", ipc);
		usleep(50000);
	}
	usleep(100000); /* the tcp listener comes right after */
	stat_pid = pid;
	/* u: ipc and tcp with nng's REQ, then both with anc_sp */
	for (int u = 0; u < 4; u++)
		for (int i = 0; i < nms; i++) {
			result r = echo_run(u % 2 == 0 ? ipc : tcp, u >= 2,
			                    ms[i].req, ms[i].rep, n);
			floor_p50[i][u] = r.p50;
			printf("{\"bench\":\"nng_floor\",\"where\":\"%s\","
			       "\"client\":\"%s\","
			       "\"layout\":\"separate process, %d workers with "
			       "nng contexts, aio_wait\",\"msg\":\"%s\","
			       "\"req_bytes\":%zu,\"rep_bytes\":%zu,\"qps\":%.1f,"
			       "\"p50_us\":%.1f,\"p99_us\":%.1f,"
			       "\"client_cpu_us_per_req\":%.1f,"
			       "\"server_cpu_us_per_req\":%.1f,"
			       "\"server_ctxsw_per_req\":%.1f}\n",
			       u % 2 == 0 ? "ipc" : "tcp",
			       u >= 2 ? "anc_sp" : "nng REQ", ECHO_WORKERS, ms[i].name,
			       ms[i].req, ms[i].rep, r.qps, r.p50, r.p99,
			       r.client_cpu_s / r.n * 1e6, r.server_cpu_s / r.n * 1e6,
			       (double)r.server_csw / r.n);
			fflush(stdout);
		}
	stat_pid = server_pid;
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
}

/* The round trip between two processes with nothing but the kernel: a
 * forked child echoes rep_len bytes for every req_len bytes over a Unix
 * socket pair, with blocking reads and writes. No transport can do
 * better on this machine. */
static int
rw_all(int fd, void *buf, size_t n, int wr)
{
	char *p = buf;
	while (n > 0) {
		ssize_t r = wr ? write(fd, p, n) : read(fd, p, n);
		if (r <= 0) {
			if (r < 0 && errno == EINTR)
				continue;
			return -1;
		}
		p += r, n -= (size_t)r;
	}
	return 0;
}

static void
bench_raw_floor(const msg_size *ms, int nms, uint32_t n)
{
	for (int i = 0; i < nms; i++) {
		size_t req = ms[i].req, rep = ms[i].rep;
		size_t cap = req > rep ? req : rep;
		unsigned char *buf = xmalloc(cap);
		double *lat = xmalloc((size_t)n * sizeof *lat), t0;
		int sv[2];
		pid_t pid;

		memset(buf, 0xab, cap);
		if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) != 0)
			die("socketpair", strerror(errno));
		if ((pid = fork()) < 0)
			die("fork", strerror(errno));
		if (pid == 0) {
			close(sv[0]);
			while (rw_all(sv[1], buf, req, 0) == 0 &&
			       rw_all(sv[1], buf, rep, 1) == 0)
				;
			_exit(0);
		}
		close(sv[1]);
		for (uint32_t k = 0; k < 200 + n; k++) {
			t0 = now_s();
			if (rw_all(sv[0], buf, req, 1) != 0 ||
			    rw_all(sv[0], buf, rep, 0) != 0)
				die("raw echo", strerror(errno));
			if (k >= 200)
				lat[k - 200] = now_s() - t0;
		}
		close(sv[0]);
		waitpid(pid, NULL, 0);
		printf("{\"bench\":\"raw_floor\",\"where\":\"unix socket pair, "
		       "two processes, blocking read/write\",\"msg\":\"%s\","
		       "\"req_bytes\":%zu,\"rep_bytes\":%zu,\"p50_us\":%.1f,"
		       "\"p99_us\":%.1f}\n", ms[i].name, req, rep,
		       pct(lat, n, 50), pct(lat, n, 99));
		fflush(stdout);
		free(buf);
		free(lat);
	}
}

/* ---- where the added latency goes: the request path in this process ------- */

/*
 * With the server stopped, the bench opens the same data directory itself
 * and, per query, times in turn: in-process faiss on the snapshot's graph,
 * the client's request encoding, anc_server_handle (decode, checks, the
 * engine's search and LMDB lookups, reply encoding: everything a worker
 * does between nng's receive and send), and the client's reply decoding.
 * Interleaving per query keeps machine noise common to all four; the
 * per-query difference handle - faiss is the server's own overhead.
 */
typedef struct {
	double faiss, encode, handle, decode, overhead;
	size_t req_bytes, rep_bytes, ping_req_bytes, ping_rep_bytes;
} split_result;

static split_result
bench_split(const dataset *ds, const char *dir, FaissIndex *fidx,
            const char *cid, uint32_t n)
{
	anc_db_options o;
	anc_db *db = NULL;
	anc_error err;
	anc_limits lim;
	anc_buf req = {0}, rep = {0};
	FaissSearchParametersHNSW *sp = NULL;
	double *t[5];
	split_result sr;
	anc_req ping;
	anc_resp presp;

	memset(&sr, 0, sizeof sr);
	anc_limits_default(&lim);
	anc_db_options_default(&o);
	o.nosync = 1;
	o.quiet = 1;
	o.drift_off = 1;
	o.snapshot_every = 0;
	must(anc_db_open(dir, &o, &db, &err), &err, "open the data in-process");
	if (faiss_SearchParametersHNSW_new_with(&sp, NULL, 64))
		die("search params", faiss_get_last_error());
	for (int i = 0; i < 5; i++)
		t[i] = xmalloc((size_t)n * sizeof(double));
	omp_set_num_threads(1);
	/* faiss alone first, over every query: timing it right before the
	 * same query's anc_server_handle would hand the handle a cache that
	 * the identical search just warmed (the graph nodes and vectors it
	 * visits), hiding part of the server's cost */
	for (uint32_t i = 0; i < n + 50; i++) {
		uint32_t q = i % ds->nq;
		const float *v = ds->queries + (size_t)q * ds->dim;
		float d[K];
		idx_t l[K];
		double a, b;

		a = now_s();
		if (faiss_Index_search_with_params(fidx, 1, v, K, sp, d, l) != 0)
			die("faiss search", faiss_get_last_error());
		b = now_s();
		if (i >= 50)
			t[0][i - 50] = b - a;
	}
	for (uint32_t i = 0; i < n + 50; i++) {
		uint32_t q = i % ds->nq;
		const float *v = ds->queries + (size_t)q * ds->dim;
		anc_req rq;
		anc_resp *resp = NULL;
		double c, b, e, f;

		memset(&rq, 0, sizeof rq);
		rq.id = i + 1;
		rq.op = ANC_OP_QUERY;
		rq.u.query.collection = "fm-hnsw";
		rq.u.query.contract = cid;
		rq.u.query.vectors = (float *)v;
		rq.u.query.nq = 1;
		rq.u.query.dim = ds->dim;
		rq.u.query.k = K;
		rq.u.query.ef = 64;
		b = now_s();
		anc_buf_reset(&req);
		must(anc_req_encode(&rq, &req, &err), &err, "encode");
		c = now_s();
		if (anc_server_handle(db, NULL, &lim, req.data, req.len, &rep) !=
		    ANC_OK)
			die("anc_server_handle", "out of memory");
		e = now_s();
		must(anc_resp_decode(rep.data, rep.len, ANC_OP_QUERY, &lim, &resp,
		                     &err),
		     &err, "decode");
		f = now_s();
		if (resp->code != 0)
			die("in-process query", resp->message);
		anc_resp_free(resp);
		if (i < 50)
			continue; /* warm-up */
		t[1][i - 50] = c - b;
		t[2][i - 50] = e - c;
		t[3][i - 50] = f - e;
		t[4][i - 50] = (e - c) - t[0][i - 50];
		sr.req_bytes = req.len;
		sr.rep_bytes = rep.len;
	}
	sr.faiss = pct(t[0], n, 50);
	sr.encode = pct(t[1], n, 50);
	sr.handle = pct(t[2], n, 50);
	sr.decode = pct(t[3], n, 50);
	/* the median of per-query differences, not a difference of medians */
	sr.overhead = pct(t[4], n, 50);

	memset(&ping, 0, sizeof ping);
	ping.id = 1;
	ping.op = ANC_OP_PING;
	anc_buf_reset(&req);
	must(anc_req_encode(&ping, &req, &err), &err, "encode ping");
	sr.ping_req_bytes = req.len;
	memset(&presp, 0, sizeof presp);
	presp.id = 1;
	presp.op = ANC_OP_PING;
	snprintf(presp.u.ping.version, sizeof presp.u.ping.version, "%s",
	         ANCHORAGE_VERSION);
	anc_buf_reset(&rep);
	must(anc_resp_encode(&presp, &rep, &err), &err, "encode ping reply");
	sr.ping_rep_bytes = rep.len;

	printf("{\"bench\":\"split_inprocess\",\"n\":%u,\"ef\":64,"
	       "\"faiss_p50_us\":%.1f,\"client_encode_p50_us\":%.1f,"
	       "\"server_handle_p50_us\":%.1f,\"client_decode_p50_us\":%.1f,"
	       "\"server_overhead_p50_us\":%.1f,\"req_bytes\":%zu,"
	       "\"rep_bytes\":%zu}\n",
	       n, sr.faiss, sr.encode, sr.handle, sr.decode, sr.overhead,
	       sr.req_bytes, sr.rep_bytes);
	fflush(stdout);
	for (int i = 0; i < 5; i++)
		free(t[i]);
	anc_buf_free(&req);
	anc_buf_free(&rep);
	faiss_SearchParameters_free(sp);
	must(anc_db_close(db, &err), &err, "close the data");
	return sr;
}

/* ---- batched flat ------------------------------------------------------------- */

static void
bench_batched_flat(const dataset *ds, const char *url, int rounds)
{
	enum { NQB = 256 };
	anc_client *c = client_open(url);
	anc_contract ct;
	anc_contract_id_str cid;
	FaissIndexFlat *flat = NULL;
	float *d = xmalloc(NQB * K * sizeof *d);
	idx_t *l = xmalloc(NQB * K * sizeof *l);
	double t, tf = 1e300, ta = 1e300, lt;
	uint64_t found_f = 0, found_a = 0;
	long rows[K];

	contract_make(&ct, "flat", ds->dim, ANC_INDEX_FLAT, 0, 0, 0);
	lt = load(c, "fm-flat", &ct, ds->base, ds->nb, ds->dim, cid);
	server_settle(stat_pid);
	if (faiss_IndexFlat_new_with(&flat, ds->dim, METRIC_L2) ||
	    faiss_Index_add((FaissIndex *)flat, ds->nb, ds->base))
		die("faiss flat", faiss_get_last_error());
	omp_set_num_threads(omp_get_num_procs());
	for (int i = 0; i < rounds; i++) {
		t = now_s();
		if (faiss_Index_search((FaissIndex *)flat, NQB, ds->queries, K, d, l))
			die("faiss flat search", faiss_get_last_error());
		t = now_s() - t;
		if (t < tf)
			tf = t;
	}
	for (uint32_t q = 0; q < NQB; q++) {
		for (int r = 0; r < K; r++)
			rows[r] = (long)l[q * K + r];
		found_f += hits_in_gt(ds, q, rows, K);
	}
	for (int i = 0; i < rounds; i++) {
		anc_resp *r = NULL;
		anc_error err;
		t = now_s();
		must(anc_client_query(c, "fm-flat", cid, ds->queries, NQB, ds->dim,
		                      K, 0, &r, &err),
		     &err, "batched query");
		t = now_s() - t;
		if (t < ta)
			ta = t;
		if (i == 0)
			for (uint32_t q = 0; q < NQB; q++) {
				const anc_hitlist *hl = &r->u.query.lists[q];
				for (uint32_t h = 0; h < K; h++)
					rows[h] = h < hl->nhits ? hit_row(&hl->hits[h])
					                        : -1;
				found_a += hits_in_gt(ds, q, rows, K);
			}
		anc_resp_free(r);
	}
	printf("{\"bench\":\"batched_flat\",\"nq\":%d,\"faiss_qps\":%.1f,"
	       "\"anchorage_qps\":%.1f,\"ratio_to_faiss\":%.3f,"
	       "\"faiss_recall10\":%.4f,\"anchorage_recall10\":%.4f,"
	       "\"best_of\":%d,\"load_s\":%.2f}\n",
	       NQB, NQB / tf, NQB / ta, tf / ta, found_f / (NQB * 10.0),
	       found_a / (NQB * 10.0), rounds, lt);
	fflush(stdout);
	faiss_Index_free((FaissIndex *)flat);
	free(d);
	free(l);
	anc_client_close(c);
}

/* ---- index kinds ------------------------------------------------------------ */

typedef struct {
	const char *coll;
	anc_index_kind kind;
	anc_contract_id_str cid;
	double build_s;
	uint64_t ntotal;
	anc_contract_info ci;
} kind_run;

static void
kinds_load(const dataset *ds, const char *url, kind_run *kr, int n)
{
	anc_client *c = client_open(url);
	for (int i = 0; i < n; i++) {
		anc_contract ct;
		double t0 = now_s();
		contract_make(&ct, kr[i].coll, ds->dim, kr[i].kind, 16, 100, 64);
		load(c, kr[i].coll, &ct, ds->base, ds->nb, ds->dim, kr[i].cid);
		kr[i].build_s = wait_trained(c, kr[i].coll, ds->nb, t0);
		contract_info(c, kr[i].coll, &kr[i].ci);
		kr[i].ntotal = kr[i].ci.index_ntotal;
	}
	anc_client_close(c);
}

/* ---- synthetic scaling ------------------------------------------------------- */

static uint64_t rng = 0x9e3779b97f4a7c15ull;

static double
urand(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return (rng >> 11) * (1.0 / 9007199254740992.0);
}

static double
nrand(void)
{
	double u = urand(), v = urand();
	return sqrt(-2 * log(u + 1e-300)) * cos(2 * M_PI * v);
}

static void
synth(dataset *ds, uint32_t nb, uint32_t nq)
{
	enum { D = 128, C = 100 };
	float *cent = xmalloc((size_t)C * D * sizeof *cent);
	FaissIndexFlat *flat = NULL;
	float *dist;
	idx_t *lab;

	ds->name = "synthetic";
	ds->dim = D;
	ds->nb = nb;
	ds->nq = nq;
	for (size_t i = 0; i < (size_t)C * D; i++)
		cent[i] = (float)(nrand() * 10);
	ds->base = xmalloc((size_t)nb * D * sizeof(float));
	ds->queries = xmalloc((size_t)nq * D * sizeof(float));
	for (uint32_t i = 0; i < nb + nq; i++) {
		float *v = i < nb ? ds->base + (size_t)i * D
		                  : ds->queries + (size_t)(i - nb) * D;
		uint32_t c = (uint32_t)(urand() * C) % C;
		for (int j = 0; j < D; j++)
			v[j] = cent[c * D + j] + (float)nrand();
	}
	/* exact ground truth */
	ds->gdim = K;
	ds->gt = xmalloc((size_t)nq * K * sizeof(int32_t));
	dist = xmalloc((size_t)nq * K * sizeof *dist);
	lab = xmalloc((size_t)nq * K * sizeof *lab);
	omp_set_num_threads(omp_get_num_procs());
	if (faiss_IndexFlat_new_with(&flat, D, METRIC_L2) ||
	    faiss_Index_add((FaissIndex *)flat, nb, ds->base) ||
	    faiss_Index_search((FaissIndex *)flat, nq, ds->queries, K, dist, lab))
		die("ground truth", faiss_get_last_error());
	for (size_t i = 0; i < (size_t)nq * K; i++)
		ds->gt[i] = (int32_t)lab[i];
	faiss_Index_free((FaissIndex *)flat);
	free(dist);
	free(lab);
	free(cent);
}

static void
bench_scaling(server *s, uint32_t nb, uint32_t nq, uint32_t per)
{
	dataset ds;
	anc_contract ct;
	anc_contract_id_str cid;
	anc_client *c;
	char coll[32];
	uint64_t errors;
	double bt;
	result r;

	memset(&ds, 0, sizeof ds);
	synth(&ds, nb, nq);
	snprintf(coll, sizeof coll, "syn%u", nb);
	c = client_open(s->ipc);
	contract_make(&ct, coll, ds.dim, ANC_INDEX_HNSW, 16, 100, 64);
	bt = load(c, coll, &ct, ds.base, nb, ds.dim, cid);
	anc_client_close(c);
	server_settle(stat_pid);
	r = cl_run(&ds, s->ipc, coll, cid, 0, 1, per, 0, 0, &errors);
	printf("{\"bench\":\"scaling\",\"data\":\"synthetic-128d-100clusters\","
	       "\"n\":%u,\"index\":\"hnsw M16 efC100 ef64\",\"build_s\":%.2f,"
	       "\"build_vps\":%.0f,\"where\":\"ipc\",\"clients\":1,"
	       "\"qps\":%.1f,\"p50_us\":%.1f,\"p99_us\":%.1f,"
	       "\"recall10\":%.4f,\"errors\":%llu}\n",
	       nb, bt, nb / bt, r.qps, r.p50, r.p99, r.recall,
	       (unsigned long long)errors);
	fflush(stdout);
	free(ds.base);
	free(ds.queries);
	free(ds.gt);
}

/* ---- main --------------------------------------------------------------------- */

int
main(int argc, char **argv)
{
	const char *data = getenv("ANC_DATA_DIR");
	int quick = 0, big = 0, focus = 0, scaling_only = 0;
	double seconds = 4;
	server s;
	dataset fm;
	char path[PATH_MAX], tmpl[200]; /* an ipc:// path must fit in 108 */
	anc_contract ct;
	anc_contract_id_str hcid;
	anc_client *c;
	FaissIndex *fidx;
	result fr1, fr2, r;
	uint64_t errors;
	double lt, peak16[3] = {0, 0, 0}; /* by transport, as urls[] */
	split_result sr;
	double floor_p50[2][4]; /* [ping, query][ipc, tcp] x [nng, sp] */
	char self[PATH_MAX];

	if (argc >= 3 && strcmp(argv[1], "--nng-echo") == 0)
		return echo_serve(argc - 2, argv + 2);
	memset(&s, 0, sizeof s);
	if (realpath(argv[0], self) == NULL)
		die("realpath", argv[0]);
	snprintf(path, sizeof path, "%s", argv[0]);
	snprintf(s.bin, sizeof s.bin, "%s/anchorage-server", dirname(path));
	if (data == NULL)
		data = ANC_DATA_DIR;
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--quick") == 0)
			quick = 1;
		else if (strcmp(argv[i], "--big") == 0)
			big = 1;
		else if (strcmp(argv[i], "--focus") == 0)
			focus = 1;
		else if (strcmp(argv[i], "--scaling-only") == 0)
			scaling_only = 1;
		else if (strcmp(argv[i], "--workers") == 0 && i + 1 < argc)
			s.workers = argv[++i];
		else if (strcmp(argv[i], "--server-bin") == 0 && i + 1 < argc)
			snprintf(s.bin, sizeof s.bin, "%s", argv[++i]);
		else if (strcmp(argv[i], "--data") == 0 && i + 1 < argc)
			data = argv[++i];
		else if (strcmp(argv[i], "--seconds") == 0 && i + 1 < argc)
			seconds = atof(argv[++i]);
		else if (strcmp(argv[i], "--port") == 0 && i + 1 < argc &&
		         atoi(argv[i + 1]) > 0 && atoi(argv[i + 1]) < 65535)
			port_base = atoi(argv[++i]);
		else {
			fprintf(stderr, "usage: query_bench [--quick] [--big] "
			                "[--focus] [--scaling-only] [--workers N] "
			                "[--server-bin PATH] [--data DIR] "
			                "[--seconds S] [--port P]\n");
			return 2;
		}
	}
	if (quick)
		seconds = 1;
	signal(SIGPIPE, SIG_IGN);
	{
		const char *t = getenv("TMPDIR");
		if (t == NULL || t[0] == '\0')
			t = "/tmp";
		if (strlen(t) > 60)
			die("TMPDIR: at most 60 bytes (the ipc:// socket path "
			    "under it must fit a socket address)", t);
		/* mkdtemp's template: it replaces the six X */
		snprintf(tmpl, sizeof tmpl, "%s/anc-qbench-XXXXXX", t);
	}
	if (mkdtemp(tmpl) == NULL)
		die("mkdtemp", strerror(errno));
	snprintf(s.dir, sizeof s.dir, "%s/data", tmpl);
	snprintf(s.ipc, sizeof s.ipc, "ipc://%s/anc.sock", tmpl);
	snprintf(s.tcp, sizeof s.tcp, "tcp://127.0.0.1:%d",
	         port_base ? port_base : 17000 + (int)(getpid() % 20000));
	if (scaling_only)
		goto scaling;

	/* Fashion-MNIST */
	memset(&fm, 0, sizeof fm);
	fm.name = "fashion-mnist";
	fm.dim = FM_DIM;
	snprintf(path, sizeof path, "%s/fashion-mnist/train-images-idx3-ubyte.gz",
	         data);
	fm.base = idx_read(path, quick ? 20000 : 60000, &fm.nb);
	snprintf(path, sizeof path, "%s/fashion-mnist/t10k-images-idx3-ubyte.gz",
	         data);
	fm.queries = idx_read(path, quick ? 500 : 2000, &fm.nq);
	if (quick) {
		/* the shipped ground truth is for the full 60k: compute it */
		dataset tmp = fm;
		FaissIndexFlat *flat = NULL;
		float *d = xmalloc((size_t)fm.nq * K * sizeof *d);
		idx_t *l = xmalloc((size_t)fm.nq * K * sizeof *l);
		if (faiss_IndexFlat_new_with(&flat, FM_DIM, METRIC_L2) ||
		    faiss_Index_add((FaissIndex *)flat, fm.nb, fm.base) ||
		    faiss_Index_search((FaissIndex *)flat, fm.nq, fm.queries, K, d,
		                       l))
			die("ground truth", faiss_get_last_error());
		fm.gdim = K;
		fm.gt = xmalloc((size_t)fm.nq * K * sizeof(int32_t));
		for (size_t i = 0; i < (size_t)fm.nq * K; i++)
			fm.gt[i] = (int32_t)l[i];
		faiss_Index_free((FaissIndex *)flat);
		free(d);
		free(l);
		(void)tmp;
	} else {
		snprintf(path, sizeof path,
		         "%s/fashion-mnist/fashion-mnist_groundtruth_l2_k100.ivecs",
		         data);
		fm.gt = ivecs_read(path, fm.nq, &fm.gdim);
	}
	printf("{\"bench\":\"setup\",\"data\":\"fashion-mnist\",\"nb\":%u,"
	       "\"nq\":%u,\"dim\":%u,\"cpus\":%d,\"quick\":%d}\n",
	       fm.nb, fm.nq, fm.dim, omp_get_num_procs(), quick);
	fflush(stdout);

	/* 1. HNSW through the server, then the same graph in-process. */
	server_start(&s);
	c = client_open(s.ipc);
	contract_make(&ct, "fm-hnsw", FM_DIM, ANC_INDEX_HNSW, 16, 100, 64);
	lt = load(c, "fm-hnsw", &ct, fm.base, fm.nb, FM_DIM, hcid);
	anc_client_close(c);
	printf("{\"bench\":\"build\",\"data\":\"fashion-mnist\",\"n\":%u,"
	       "\"index\":\"hnsw M16 efC100\",\"build_s\":%.2f,"
	       "\"build_vps\":%.0f}\n", fm.nb, lt, fm.nb / lt);
	fflush(stdout);
	server_stop(&s); /* snapshots */
	fidx = snap_read(s.dir, hcid);
	{
		FaissIndexIDMap2 *m = faiss_IndexIDMap2_cast(fidx);
		idx_t *ids;
		if (m == NULL)
			die("snapshot is not an IDMap2", hcid);
		faiss_IndexIDMap2_id_map(m, &ids, &nlabels);
		label_of_row = ids;
		if (nlabels != fm.nb)
			die("snapshot entries differ from the rows loaded", hcid);
	}
	sr = bench_split(&fm, s.dir, fidx, hcid, quick ? 500 : 2000);
	server_start(&s);

	uint32_t per = (uint32_t)(quick ? 1500 : 6000);
	fr1 = faiss_run(&fm, fidx, 64, 1, per);
	print_result("hnsw", "faiss-inprocess", 1, 64, fr1, 0, 0);
	fr2 = faiss_run(&fm, fidx, 64, omp_get_num_procs(), per);
	print_result("hnsw", "faiss-inprocess-allcores", omp_get_num_procs(), 64,
	             fr2, 0, 0);

	/* ping */
	if (!focus) {
		const char *urls[2] = {s.ipc, s.tcp};
		const char *names[2] = {"ipc", "tcp"};
		for (int u = 0; u < 2; u++) {
			r = cl_run(&fm, urls[u], NULL, NULL, 0, 1, quick ? 2000 : 10000,
			           0, 1, &errors);
			printf("{\"bench\":\"ping\",\"where\":\"%s\",\"qps\":%.1f,"
			       "\"p50_us\":%.1f,\"p99_us\":%.1f,"
			       "\"client_cpu_us_per_req\":%.1f,"
			       "\"server_cpu_us_per_req\":%.1f,"
			       "\"server_ctxsw_per_req\":%.1f,\"errors\":%llu}\n",
			       names[u], r.qps, r.p50, r.p99,
			       r.client_cpu_s / r.n * 1e6, r.server_cpu_s / r.n * 1e6,
			       (double)r.server_csw / r.n,
			       (unsigned long long)errors);
			fflush(stdout);
		}
	}
	/* the transport floor at Anchorage's own message sizes */
	{
		msg_size ms[2] = {{"ping", sr.ping_req_bytes, sr.ping_rep_bytes},
		                  {"query", sr.req_bytes, sr.rep_bytes}};
		bench_nng_floor(self, tmpl, ms, 2, quick ? 2000 : 10000,
		                floor_p50);
		bench_raw_floor(ms, 2, quick ? 2000 : 10000);
	}

	/* clients x transport; "ipc-nng": the same over ipc with the client
	 * library's calls through nng's REQ socket, as before anc_sp */
	{
		const char *urls[3] = {s.ipc, s.tcp, s.ipc};
		const char *names[3] = {"ipc", "tcp", "ipc-nng"};
		int ncl[3] = {1, 4, 16};
		for (int u = 0; u < 3; u++)
			for (int i = 0; i < 3; i++) {
				if (focus && (ncl[i] == 4 || u == 1))
					continue;
				use_nng = u == 2;
				/* about `seconds` of work at the faiss rate */
				uint32_t n = (uint32_t)(fr2.qps * seconds / ncl[i]);
				if (n < 50)
					n = 50;
				if (ncl[i] == 1)
					n = (uint32_t)(fr1.qps * seconds);
				/* On a shared machine the load changes within
				 * minutes: the 1- and 16-client runs are also
				 * compared with in-process faiss measured right
				 * before and right after them (the mean of the
				 * two brackets the run). */
				result ref = {0};
				int nth = ncl[i] == 1 ? 1 : omp_get_num_procs();
				uint32_t nref = (uint32_t)((ncl[i] == 1 ? fr1.qps : fr2.qps) *
				                           seconds / 2 / nth);
				if (nref < 50)
					nref = 50;
				if (ncl[i] != 4)
					ref = faiss_run(&fm, fidx, 64, nth, nref);
				r = cl_run(&fm, urls[u], "fm-hnsw", hcid, 64, ncl[i], n, 0,
				           0, &errors);
				if (ncl[i] != 4) {
					result b = faiss_run(&fm, fidx, 64, nth, nref);
					ref.qps = (ref.qps + b.qps) / 2;
					ref.p50 = (ref.p50 + b.p50) / 2;
					ref.server_cpu_s += b.server_cpu_s;
					ref.n += b.n;
				}
				print_result("hnsw", names[u], ncl[i], 64, r,
				             r.qps / (ncl[i] == 1 ? fr1.qps : fr2.qps),
				             errors);
				if (ncl[i] == 1) {
					/* added = transport floor + server overhead +
					 * client codec + the rest (thread hand-offs,
					 * scheduling, caches: not attributable) */
					double added = r.p50 - ref.p50;
					/* the floor of this row's client */
					int fl = u == 2 ? 0 : u + 2;
					double codec = sr.encode + sr.decode;
					printf("{\"bench\":\"added_latency\",\"where\":"
					       "\"%s\",\"p50_us\":%.1f,\"faiss_p50_us\":"
					       "%.1f,\"anchorage_p50_us\":%.1f,"
					       "\"p50_us_vs_first_faiss\":%.1f,"
					       "\"nng_floor_p50_us\":%.1f,"
					       "\"server_overhead_p50_us\":%.1f,"
					       "\"client_codec_p50_us\":%.1f,"
					       "\"rest_us\":%.1f}\n",
					       names[u], added, ref.p50, r.p50,
					       r.p50 - fr1.p50, floor_p50[1][fl],
					       sr.overhead, codec,
					       added - floor_p50[1][fl] - sr.overhead -
					           codec);
				}
				if (ncl[i] == 16) {
					/* The 16 client threads run on the same
					 * cores as the server: a fair comparison
					 * gives faiss the cores they leave. */
					int ncpu = omp_get_num_procs();
					double left = ncpu - r.client_cpu_s / r.wall_s;
					/* ... and with nng's I/O threads on the
					 * client side counted as the client's */
					double pleft = ncpu -
					               r.client_proc_cpu_s / r.wall_s;
					printf("{\"bench\":\"throughput_16\",\"where\":"
					       "\"%s\",\"qps\":%.1f,\"faiss_allcores_qps\":"
					       "%.1f,\"ratio_raw\":%.3f,"
					       "\"ratio_vs_first_faiss\":%.3f,"
					       "\"client_cores\":%.2f,\"cores_left\":%.2f,"
					       "\"ratio_on_cores_left\":%.3f,"
					       "\"client_process_cores\":%.2f,"
					       "\"ratio_on_cores_left_by_process\":"
					       "%.3f,"
					       "\"server_cpu_us_per_req\":%.1f,"
					       "\"faiss_cpu_us_per_query\":%.1f,"
					       "\"cpu_efficiency\":%.3f}\n",
					       names[u], r.qps, ref.qps, r.qps / ref.qps,
					       r.qps / fr2.qps, r.client_cpu_s / r.wall_s,
					       left, r.qps / (ref.qps * left / ncpu),
					       r.client_proc_cpu_s / r.wall_s,
					       r.qps / (ref.qps * pleft / ncpu),
					       r.server_cpu_s / r.n * 1e6,
					       ref.server_cpu_s / ref.n * 1e6,
					       (ref.server_cpu_s / ref.n) /
					           (r.server_cpu_s / r.n));
					fflush(stdout);
					peak16[u] = r.qps;
				}
			}
	}

	use_nng = 0;
	/* p99 at 70% of the 16-client peak (open loop, ipc), for each client
	 * at 70% of its own peak */
	for (int u = 0; u < 3; u += 2) {
		double rate = 0.7 * peak16[u];
		uint32_t n = (uint32_t)(rate * seconds / 16);
		if (n < 50)
			n = 50;
		use_nng = u == 2;
		r = cl_run(&fm, s.ipc, "fm-hnsw", hcid, 64, 16, n, rate, 0, &errors);
		use_nng = 0;
		printf("{\"bench\":\"p99_at_70pct\",\"where\":\"%s\","
		       "\"clients\":16,\"target_qps\":%.1f,\"qps\":%.1f,"
		       "\"p50_us\":%.1f,\"p99_us\":%.1f,\"recall10\":%.4f,"
		       "\"errors\":%llu}\n", u == 2 ? "ipc-nng" : "ipc",
		       rate, r.qps, r.p50, r.p99, r.recall,
		       (unsigned long long)errors);
		fflush(stdout);
	}

	if (focus) {
		faiss_Index_free(fidx);
		server_stop(&s);
		free(fm.base);
		free(fm.queries);
		free(fm.gt);
		goto out;
	}
	/* efSearch sweep */
	{
		uint32_t efs[] = {16, 32, 64, 128, 256};
		for (size_t i = 0; i < sizeof efs / sizeof efs[0]; i++) {
			uint32_t n = quick ? 500 : 2000;
			result f = faiss_run(&fm, fidx, efs[i], 1, n);
			print_result("ef_sweep", "faiss-inprocess", 1, efs[i], f, 0, 0);
			r = cl_run(&fm, s.ipc, "fm-hnsw", hcid, efs[i], 1, n, 0, 0,
			           &errors);
			print_result("ef_sweep", "ipc", 1, efs[i], r, r.qps / f.qps,
			             errors);
		}
	}
	faiss_Index_free(fidx);

	/* batched flat */
	bench_batched_flat(&fm, s.ipc, quick ? 3 : 10);

	/* index kinds: recall at equal ef and memory per vector */
	{
		kind_run kr[3];
		memset(kr, 0, sizeof kr);
		kr[0].coll = "fm-sq8";
		kr[0].kind = ANC_INDEX_HNSW_SQ8;
		kr[1].coll = "fm-ivfflat";
		kr[1].kind = ANC_INDEX_IVF_FLAT;
		kr[2].coll = "fm-ivfpq";
		kr[2].kind = ANC_INDEX_IVF_PQ;
		const int nk = 3;
		anc_contract_info hci, fci;
		uint32_t n = quick ? 500 : 2000;
		kinds_load(&fm, s.ipc, kr, nk);
		c = client_open(s.ipc);
		contract_info(c, "fm-hnsw", &hci);
		contract_info(c, "fm-flat", &fci);
		anc_client_close(c);
		server_stop(&s); /* snapshots of every kind, for their sizes */
		server_start(&s);
		for (uint32_t ef = 64; ef <= 128; ef *= 2) {
			result a = cl_run(&fm, s.ipc, "fm-hnsw", hcid, ef, 1, n, 0, 0,
			                  &errors);
			result b = cl_run(&fm, s.ipc, "fm-sq8", kr[0].cid, ef, 1, n, 0,
			                  0, &errors);
			printf("{\"bench\":\"sq8_vs_flat\",\"ef\":%u,"
			       "\"hnsw_recall10\":%.4f,\"hnsw_sq8_recall10\":%.4f,"
			       "\"recall_gap\":%.4f,\"hnsw_qps\":%.1f,"
			       "\"hnsw_sq8_qps\":%.1f,\"hnsw_code_bytes\":%u,"
			       "\"hnsw_sq8_code_bytes\":%u,\"code_ratio\":%.3f}\n",
			       ef, a.recall, b.recall, a.recall - b.recall, a.qps,
			       b.qps, hci.code_bytes, kr[0].ci.code_bytes,
			       (double)kr[0].ci.code_bytes / hci.code_bytes);
		}
		{
			struct {
				const char *coll, *cid;
				anc_contract_info *ci;
				double build;
			} all[] = {{"fm-flat", NULL, &fci, 0},
			           {"fm-hnsw", hcid, &hci, lt},
			           {"fm-sq8", kr[0].cid, &kr[0].ci, kr[0].build_s},
			           {"fm-ivfflat", kr[1].cid, &kr[1].ci, kr[1].build_s},
			           {"fm-ivfpq", kr[2].cid, &kr[2].ci, kr[2].build_s}};
			for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) {
				anc_contract_info *ci = all[i].ci;
				result q = {0};
				if (all[i].cid != NULL)
					q = cl_run(&fm, s.ipc, all[i].coll, all[i].cid, 0, 1,
					           n, 0, 0, &errors);
				printf("{\"bench\":\"kind\",\"index\":\"%s\","
				       "\"code_bytes\":%u,\"index_bytes_estimate\":%u,"
				       "\"snapshot_bytes_per_vector\":%.1f,"
				       "\"build_s\":%.2f,\"qps_1client_ipc\":%.1f,"
				       "\"p50_us\":%.1f,\"recall10\":%.4f}\n",
				       anc_index_kind_name(ci->contract.index.kind),
				       ci->code_bytes, ci->index_bytes,
				       snap_bytes_per_vector(s.dir, ci->id,
				                             ci->index_ntotal),
				       all[i].build, q.qps, q.p50, q.recall);
			}
		}
		fflush(stdout);
	}
	server_stop(&s);
	free(fm.base);
	free(fm.queries);
	free(fm.gt);

	/* 2. scaling, on a fresh server */
scaling:
	{
		char cmd[PATH_MAX + 16];
		snprintf(cmd, sizeof cmd, "rm -rf '%s'", s.dir);
		if (system(cmd) != 0)
			die("cannot clean", s.dir);
		server_start(&s);
		bench_scaling(&s, 10000, 500, quick ? 500 : 2000);
		if (!quick)
			bench_scaling(&s, 100000, 500, 2000);
		if (big)
			bench_scaling(&s, 1000000, 500, 2000);
		server_stop(&s);
	}
out:
	{
		char cmd[PATH_MAX + 16];
		snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpl);
		if (system(cmd) != 0)
			fprintf(stderr, "query_bench: could not remove %s\n", tmpl);
	}
	return 0;
}
