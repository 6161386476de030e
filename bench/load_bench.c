/*
 * load_bench.c — bulk-load throughput: the same Fashion-MNIST train set
 * (60000 x 784, uint8 converted to float32) loaded
 *   (a) in-process through anc_db_upsert (LMDB + faiss, same batch size,
 *       same sync setting), and
 *   (b) through a real anchorage-server and the `anchorage load` CLI
 *       (the pipelined loader), from a .npy + ids JSONL written to a
 *       temporary directory,
 * and prints one JSON line per measurement plus the ratio (b)/(a). The
 * CLI's peak RSS (wait4's ru_maxrss) is reported for 10k and 60k records,
 * to show that the loader's memory does not grow with the input, and
 * from the server's /metrics how many groups (transactions) the load took
 * and how long its commit stage (serial: transaction and fsync) and its
 * index stage (overlapping) ran: commit_stage_s close to seconds means the
 * commits set the pace. With
 * --hnsw it also measures the same two paths into an HNSW index and faiss's
 * own HNSW add of the same vectors (faiss C API, IDMap2,HNSW M), and the
 * ratios.
 *
 * usage: load_bench [--server-bin PATH] [--cli-bin PATH] [--data DIR]
 *                   [--n N] [--batch B] [--inflight K] [--nosync]
 *                   [--hnsw] [--hnsw-n N] [--keep] [--inproc-only]
 *                   [--rounds R]
 * The binaries default to anchorage-server and anchorage next to this
 * executable (the build directory); --data defaults to ../shared/data as
 * seen from the source tree (compile definition) or $ANC_DATA_DIR.
 *
 * --rounds R (default 3, at most 9): the HNSW measurements are repeated R
 * times, faiss's add and the two paths taking turns (each round starts
 * once the server has been idle for 3 s), a "round" line gives each
 * round's ratios and the ratio line their medians and ranges.
 *
 * --inproc-only stops after (a) (with --hnsw: faiss's batched HNSW add
 * and (a) into HNSW, nothing else): a clean target for perf record.
 *
 * Goals (measured, not asserted): (b) >= 0.8 x (a) and >= 50,000
 * vectors/s for the flat index; HNSW ratio >= 0.8.
 */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <time.h>
#include <unistd.h>

#include <faiss/c_api/AutoTune_c.h>
#include <faiss/c_api/Index_c.h>
#include <faiss/c_api/index_factory_c.h>
#include <zlib.h>

#include "anc_client.h"
#include "anc_index.h"

#ifndef ANC_DATA_DIR
#define ANC_DATA_DIR "../shared/data"
#endif

#define DIM 784
#define ROUNDS_MAX 9

static double last_cli_cpu; /* CPU seconds of the last CLI run */
/* CPU seconds the server spent over the last CLI run (/proc/PID/stat;
 * -1 when /proc cannot tell): next to the elapsed time it says whether
 * the server waited for the disk or for its cores. */
static double last_srv_cpu = -1;
/* The server's write stages over the last CLI run, from its /metrics
 * (anchorage_write_*): groups committed and the seconds of the commit
 * stage (transactions and fsync, one group at a time) and of the index
 * stage. last_groups 0: not known. */
static unsigned http_port;
static unsigned long long last_groups;
static double last_commit_s, last_index_s;

/* A free loopback port for the server's HTTP listener (0 if none). */
static unsigned
free_port(void)
{
	struct sockaddr_in a = {0};
	socklen_t len = sizeof a;
	unsigned port = 0;
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	a.sin_family = AF_INET;
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (fd >= 0 && bind(fd, (struct sockaddr *)&a, sizeof a) == 0 &&
	    getsockname(fd, (struct sockaddr *)&a, &len) == 0)
		port = ntohs(a.sin_port);
	if (fd >= 0)
		close(fd);
	return port;
}

/* anchorage_write_* from the server's /metrics; 0 on success. */
static int
write_stats(unsigned long long *groups, double *commit_s, double *index_s)
{
	static char body[1 << 20];
	struct sockaddr_in a = {0};
	const char *req = "GET /metrics HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n";
	const char *g, *c, *x;
	size_t n = 0;
	ssize_t r;
	int fd, ok;

	if (http_port == 0 || (fd = socket(AF_INET, SOCK_STREAM, 0)) < 0)
		return -1;
	a.sin_family = AF_INET;
	a.sin_port = htons((uint16_t)http_port);
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	ok = connect(fd, (struct sockaddr *)&a, sizeof a) == 0 &&
	     write(fd, req, strlen(req)) == (ssize_t)strlen(req);
	while (ok && n < sizeof body - 1 &&
	       (r = read(fd, body + n, sizeof body - 1 - n)) > 0)
		n += (size_t)r;
	close(fd);
	body[n] = '\0';
	g = strstr(body, "\nanchorage_write_groups_total ");
	c = strstr(body, "\nanchorage_write_seconds_total{stage=\"commit\"} ");
	x = strstr(body, "\nanchorage_write_seconds_total{stage=\"index\"} ");
	if (!ok || g == NULL || c == NULL || x == NULL)
		return -1;
	*groups = strtoull(strchr(g + 1, ' ') + 1, NULL, 10);
	*commit_s = strtod(strchr(c + 1, ' ') + 1, NULL);
	*index_s = strtod(strchr(x + 1, ' ') + 1, NULL);
	return 0;
}
/* /proc/PID/io write_bytes of the last measured process (in-process:
 * ourselves; server+CLI: the server) over the load, next to the vector
 * bytes (n x dim x 4). It is the kernel's page-cache accounting: a 4 KiB
 * LMDB page that dirties a clean large folio counts the whole folio, so
 * it tracks how scattered the commits are, and overstates what reaches
 * the disk (README, "Measured load rates"). 0 when /proc cannot tell. */
static unsigned long long last_write_bytes;

static unsigned long long
io_write_bytes(pid_t pid)
{
	char path[64], line[128];
	unsigned long long v = 0;
	FILE *fp;

	snprintf(path, sizeof(path), "/proc/%ld/io", (long)pid);
	if ((fp = fopen(path, "r")) == NULL)
		return 0;
	while (fgets(line, sizeof(line), fp) != NULL)
		if (sscanf(line, "write_bytes: %llu", &v) == 1)
			break;
	fclose(fp);
	return v;
}

static double proc_cpu_s(pid_t pid);

static double
now_s(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static void
die(const char *fmt, const char *a, const char *b)
{
	fprintf(stderr, "load_bench: ");
	fprintf(stderr, fmt, a, b);
	fputc('\n', stderr);
	exit(1);
}

static uint32_t
be32(const unsigned char *b)
{
	return (uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 |
	    (uint32_t)b[2] << 8 | b[3];
}

/* Read an IDX images file (gzip) as float32 rows. */
static float *
idx_read(const char *path, uint32_t want, uint32_t *n)
{
	gzFile gz = gzopen(path, "rb");
	unsigned char hdr[16], *u8;
	float *f;
	uint32_t rows, r, c;
	size_t i, total;

	if (gz == NULL)
		die("cannot open %s%s", path, "");
	if (gzread(gz, hdr, 16) != 16 || be32(hdr) != 0x803)
		die("%s: not an IDX images file%s", path, "");
	rows = be32(hdr + 4);
	r = be32(hdr + 8);
	c = be32(hdr + 12);
	if (r * c != DIM)
		die("%s: expected 28x28 images%s", path, "");
	if (want < rows)
		rows = want;
	total = (size_t)rows * DIM;
	u8 = malloc(total);
	f = malloc(total * sizeof(float));
	if (u8 == NULL || f == NULL)
		die("out of memory%s%s", "", "");
	if (gzread(gz, u8, (unsigned)total) != (int)total)
		die("%s: truncated%s", path, "");
	gzclose(gz);
	for (i = 0; i < total; i++)
		f[i] = (float)u8[i];
	free(u8);
	*n = rows;
	return f;
}

static void
npy_write(const char *path, const float *x, uint32_t n)
{
	char hdr[128];
	int hl;
	FILE *fp = fopen(path, "wb");
	unsigned char pre[10] = {0x93, 'N', 'U', 'M', 'P', 'Y', 1, 0, 0, 0};

	if (fp == NULL)
		die("cannot write %s%s", path, "");
	hl = snprintf(hdr, sizeof(hdr),
	    "{'descr': '<f4', 'fortran_order': False, 'shape': (%u, %d), }",
	    n, DIM);
	/* Pad so that the data starts on a 64-byte boundary. */
	while ((10 + hl + 1) % 64 != 0)
		hdr[hl++] = ' ';
	hdr[hl++] = '\n';
	pre[8] = (unsigned char)(hl & 0xff);
	pre[9] = (unsigned char)(hl >> 8);
	if (fwrite(pre, 1, 10, fp) != 10 ||
	    fwrite(hdr, 1, (size_t)hl, fp) != (size_t)hl ||
	    fwrite(x, sizeof(float), (size_t)n * DIM, fp) != (size_t)n * DIM ||
	    fclose(fp) != 0)
		die("cannot write %s%s", path, "");
}

static void
ids_write(const char *path, uint32_t n)
{
	FILE *fp = fopen(path, "w");
	uint32_t i;

	if (fp == NULL)
		die("cannot write %s%s", path, "");
	for (i = 0; i < n; i++)
		fprintf(fp, "{\"source\":\"fashion-mnist-train\",\"chunk\":%u}\n",
		    i);
	if (fclose(fp) != 0)
		die("cannot write %s%s", path, "");
}

static void
contract_fill(anc_contract *c, int hnsw, uint32_t m)
{
	anc_contract_init(c);
	snprintf(c->name, sizeof(c->name), "fmnist%s", hnsw ? "-hnsw" : "");
	snprintf(c->model, sizeof(c->model), "raw-pixels");
	snprintf(c->revision, sizeof(c->revision), "1");
	c->dim = DIM;
	c->metric = ANC_METRIC_L2;
	c->normalize = 0;
	c->index.kind = hnsw ? ANC_INDEX_HNSW : ANC_INDEX_FLAT;
	if (hnsw)
		c->index.m = m;
}

/* (a) in-process. Returns seconds. */
static double
bench_inproc(const char *dir, const float *x, uint32_t n, uint32_t batch,
             int nosync, int hnsw)
{
	anc_db_options opt;
	anc_db *db = NULL;
	anc_error err = {0};
	anc_contract c;
	anc_contract_id_str id;
	anc_record *recs = calloc(batch, sizeof(*recs));
	anc_upsert_result *res = calloc(batch, sizeof(*res));
	char (*chunks)[16] = calloc(batch, 16);
	uint32_t i, j, m;
	unsigned long long wb0;
	double t0, t;

	if (!recs || !res || !chunks)
		die("out of memory%s%s", "", "");
	anc_db_options_default(&opt);
	opt.nosync = nosync;
	opt.quiet = 1;
	if (anc_db_open(dir, &opt, &db, &err) ||
	    anc_db_collection_create(db, "fm", NULL, &err))
		die("in-process: %s%s", err.msg, "");
	contract_fill(&c, hnsw, 32);
	if (anc_db_contract_register(db, "fm", &c, id, NULL, &err))
		die("in-process: %s%s", err.msg, "");
	wb0 = io_write_bytes(getpid());
	t0 = now_s();
	for (i = 0; i < n; i += m) {
		m = n - i < batch ? n - i : batch;
		for (j = 0; j < m; j++) {
			snprintf(chunks[j], 16, "%u", i + j);
			recs[j].source = "fashion-mnist-train";
			recs[j].chunk = chunks[j];
			recs[j].text = NULL;
			recs[j].vec = x + (size_t)(i + j) * DIM;
			recs[j].dim = DIM;
		}
		if (anc_db_upsert(db, "fm", id, recs, m, res, NULL, &err))
			die("in-process upsert: %s%s", err.msg, "");
	}
	t = now_s() - t0;
	last_write_bytes = io_write_bytes(getpid()) - wb0;
	(void)anc_db_close(db, NULL); /* snapshot time is not load time */
	free(recs);
	free(res);
	free(chunks);
	return t;
}

/* faiss's own HNSW add, same vectors, same M and efConstruction as the
 * engine's defaults; in batches of `batch` (0: one call). */
static double
bench_faiss_hnsw(const float *x, uint32_t n, uint32_t batch)
{
	FaissIndex *idx = NULL;
	FaissParameterSpace *ps = NULL;
	idx_t *ids = malloc(n * sizeof(idx_t));
	char desc[32];
	uint32_t i, m;
	double t0, t;

	snprintf(desc, sizeof(desc), "IDMap2,HNSW%d", ANC_DEFAULT_HNSW_M);
	if (ids == NULL || faiss_index_factory(&idx, DIM, desc, METRIC_L2) != 0 ||
	    faiss_ParameterSpace_new(&ps) != 0 ||
	    faiss_ParameterSpace_set_index_parameter(ps, idx, "efConstruction",
	        (double)ANC_DEFAULT_EF_CONSTRUCTION) != 0)
		die("faiss HNSW set-up failed%s%s", "", "");
	faiss_ParameterSpace_free(ps);
	for (i = 0; i < n; i++)
		ids[i] = i + 1;
	if (batch == 0)
		batch = n;
	t0 = now_s();
	for (i = 0; i < n; i += m) {
		m = n - i < batch ? n - i : batch;
		if (faiss_Index_add_with_ids(idx, m, x + (size_t)i * DIM,
		        ids + i) != 0)
			die("faiss add failed%s%s", "", "");
	}
	t = now_s() - t0;
	faiss_Index_free(idx);
	free(ids);
	return t;
}

static pid_t
spawn(char *const argv[], const char *log)
{
	pid_t pid = fork();
	int fd;

	if (pid < 0)
		die("fork: %s%s", strerror(errno), "");
	if (pid == 0) {
		fd = open(log, O_WRONLY | O_CREAT | O_APPEND, 0644);
		if (fd >= 0) {
			dup2(fd, 1);
			dup2(fd, 2);
		}
		execv(argv[0], argv);
		_exit(127);
	}
	return pid;
}

/* Run the CLI load; returns seconds, *rss_kb the child's peak RSS. */
static double
bench_cli(const char *cli, const char *url, const char *coll,
          const char *ids, const char *npy, uint32_t batch,
          uint32_t inflight, const char *log, long *rss_kb, pid_t srv)
{
	unsigned long long wb0 = io_write_bytes(srv), g0 = 0, g1 = 0;
	double cpu0 = proc_cpu_s(srv), c0 = 0, c1 = 0, x0 = 0, x1 = 0;
	int ws0 = write_stats(&g0, &c0, &x0);
	char b[16], k[16];
	char *argv[] = {(char *)cli, "--server", (char *)url, "--timeout",
	    "600000", "load", (char *)coll, (char *)ids, "--vectors",
	    (char *)npy, "--batch", b, "--inflight", k, "--quiet", NULL};
	struct rusage ru;
	double t0, t;
	pid_t pid;
	int st;

	snprintf(b, sizeof(b), "%u", batch);
	snprintf(k, sizeof(k), "%u", inflight);
	t0 = now_s();
	pid = spawn(argv, log);
	if (wait4(pid, &st, 0, &ru) != pid || !WIFEXITED(st) ||
	    WEXITSTATUS(st) != 0)
		die("the CLI load failed: see %s%s", log, "");
	t = now_s() - t0;
	last_write_bytes = io_write_bytes(srv) - wb0;
	{
		double cpu1 = proc_cpu_s(srv);
		last_srv_cpu = cpu0 >= 0 && cpu1 >= 0 ? cpu1 - cpu0 : -1;
	}
	last_groups = 0;
	if (ws0 == 0 && write_stats(&g1, &c1, &x1) == 0 && g1 > g0) {
		last_groups = g1 - g0;
		last_commit_s = c1 - c0;
		last_index_s = x1 - x0;
	}
	*rss_kb = ru.ru_maxrss;
	last_cli_cpu = (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 +
	    (double)ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6;
	return t;
}

static void
setup_collection(anc_client *cl, const char *coll, int hnsw)
{
	anc_resp *r = NULL;
	anc_error err = {0};
	anc_contract c;
	int i;

	/* The server may still be starting: ping until it answers. */
	for (i = 0; i < 300; i++) {
		if (anc_client_ping(cl, &r, &err) == 0)
			break;
		usleep(100000);
	}
	anc_resp_free(r);
	r = NULL;
	if (anc_client_collection_create(cl, coll, &r, &err))
		die("collection create: %s%s", err.msg, "");
	anc_resp_free(r);
	r = NULL;
	contract_fill(&c, hnsw, 32);
	if (anc_client_contract_register(cl, coll, &c, &r, &err))
		die("contract register: %s%s", err.msg, "");
	anc_resp_free(r);
}

/* CPU seconds pid has used (utime + stime), or -1. */
static double
proc_cpu_s(pid_t pid)
{
	char path[64];
	unsigned long ut = 0, st = 0;
	long tick = sysconf(_SC_CLK_TCK);
	FILE *f;
	int n;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	if ((f = fopen(path, "r")) == NULL)
		return -1;
	/* comm (field 2) is anchorage-serv: no spaces */
	n = fscanf(f, "%*d %*s %*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u "
	    "%lu %lu", &ut, &st);
	fclose(f);
	return n == 2 && tick > 0 ? (double)(ut + st) / (double)tick : -1;
}

/* Wait until the server has used no more than a tick of CPU for 3 s in a
 * row (at most 60 s): after a load it recalibrates grounding in the
 * background (2 s after the last write), which would otherwise run inside
 * the next round's measurements. */
static void
settle(pid_t pid)
{
	double last = proc_cpu_s(pid), quiet = 0, waited = 0;

	while (last >= 0 && quiet < 3.0 && waited < 60.0) {
		double now;
		usleep(250000);
		waited += 0.25;
		now = proc_cpu_s(pid);
		quiet = now - last <= 0.011 ? quiet + 0.25 : 0;
		last = now;
	}
}

static int
cmp_dbl(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

/* Median of v[0..n) (sorts a copy); n <= ROUNDS_MAX. */
static double
median(const double *v, int n)
{
	double c[ROUNDS_MAX];
	memcpy(c, v, (size_t)n * sizeof *c);
	qsort(c, (size_t)n, sizeof *c, cmp_dbl);
	return n % 2 ? c[n / 2] : (c[n / 2 - 1] + c[n / 2]) / 2;
}

static double
min_of(const double *v, int n)
{
	double m = v[0];
	for (int i = 1; i < n; i++)
		m = v[i] < m ? v[i] : m;
	return m;
}

static double
max_of(const double *v, int n)
{
	double m = v[0];
	for (int i = 1; i < n; i++)
		m = v[i] > m ? v[i] : m;
	return m;
}

static void
emit(const char *kase, const char *index, uint32_t n, double secs,
     uint32_t batch, uint32_t inflight, int nosync, long rss_kb)
{
	printf("{\"bench\":\"load\",\"case\":\"%s\",\"index\":\"%s\","
	    "\"n\":%u,\"dim\":%d,\"seconds\":%.3f,\"vectors_per_s\":%.0f,"
	    "\"batch\":%u,\"inflight\":%u,\"sync\":%s", kase, index, n, DIM,
	    secs, (double)n / secs, batch, inflight,
	    nosync ? "false" : "true");
	if (last_write_bytes > 0)
		printf(",\"write_bytes\":%llu,\"write_over_vector_bytes\":%.2f",
		    last_write_bytes, (double)last_write_bytes /
		    ((double)n * DIM * sizeof(float)));
	last_write_bytes = 0;
	if (rss_kb > 0)
		printf(",\"peak_rss_kb\":%ld,\"cli_cpu_s\":%.3f", rss_kb,
		    last_cli_cpu);
	if (rss_kb > 0 && last_srv_cpu >= 0)
		printf(",\"server_cpu_s\":%.3f", last_srv_cpu);
	last_srv_cpu = -1;
	if (rss_kb > 0 && last_groups > 0)
		printf(",\"groups\":%llu,\"records_per_group\":%.0f,"
		    "\"commit_stage_s\":%.3f,\"index_stage_s\":%.3f",
		    last_groups, (double)n / (double)last_groups,
		    last_commit_s, last_index_s);
	last_groups = 0;
	printf("}\n");
	fflush(stdout);
}

int
main(int argc, char **argv)
{
	char self[PATH_MAX], bindir[PATH_MAX], srvbin[PATH_MAX + 32];
	char clibin[PATH_MAX + 32], tmpl[] = "/tmp/anc-loadbench-XXXXXX";
	char p_npy[PATH_MAX], p_ids[PATH_MAX], p_npy10[PATH_MAX];
	char p_ids10[PATH_MAX], p_in[PATH_MAX], p_srv[PATH_MAX];
	char url[PATH_MAX + 16], log[PATH_MAX], cmd[PATH_MAX + 16];
	const char *data = getenv("ANC_DATA_DIR");
	const char *sb = NULL, *cb = NULL;
	uint32_t n = 60000, batch = 2048, inflight = 4, hnsw_n = 20000, got;
	int nosync = 0, hnsw = 0, keep = 0, inproc_only = 0, i, st;
	int rounds = 3;
	char *tmp;
	float *x;
	double ta, tb, t10, th_a, th_b, th_f, th_f1;
	long rss60, rss10, rssh;
	anc_client *cl = NULL;
	anc_error err = {0};
	pid_t srv;
	ssize_t sl;

	for (i = 1; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;

		if (strcmp(a, "--server-bin") == 0 && v) sb = v, i++;
		else if (strcmp(a, "--cli-bin") == 0 && v) cb = v, i++;
		else if (strcmp(a, "--data") == 0 && v) data = v, i++;
		else if (strcmp(a, "--n") == 0 && v) n = (uint32_t)atoi(v), i++;
		else if (strcmp(a, "--batch") == 0 && v)
			batch = (uint32_t)atoi(v), i++;
		else if (strcmp(a, "--inflight") == 0 && v)
			inflight = (uint32_t)atoi(v), i++;
		else if (strcmp(a, "--hnsw-n") == 0 && v)
			hnsw_n = (uint32_t)atoi(v), i++;
		else if (strcmp(a, "--nosync") == 0) nosync = 1;
		else if (strcmp(a, "--hnsw") == 0) hnsw = 1;
		else if (strcmp(a, "--keep") == 0) keep = 1;
		else if (strcmp(a, "--inproc-only") == 0) inproc_only = 1;
		else if (strcmp(a, "--rounds") == 0 && v)
			rounds = atoi(v), i++;
		else {
			fprintf(stderr, "usage: load_bench [--server-bin PATH] "
			    "[--cli-bin PATH] [--data DIR] [--n N] [--batch B] "
			    "[--inflight K] [--nosync] [--hnsw] [--hnsw-n N] "
			    "[--keep] [--inproc-only] [--rounds R]\n");
			return 2;
		}
	}
	if (n == 0 || batch == 0 || inflight == 0 || batch > 10000 ||
	    rounds < 1 || rounds > ROUNDS_MAX)
		die("bad --n/--batch/--inflight/--rounds%s%s", "", "");
	if (data == NULL || data[0] == '\0')
		data = ANC_DATA_DIR;
	if ((sl = readlink("/proc/self/exe", self, sizeof(self) - 1)) < 0)
		die("readlink /proc/self/exe: %s%s", strerror(errno), "");
	self[sl] = '\0';
	snprintf(bindir, sizeof(bindir), "%s", dirname(self));
	snprintf(srvbin, sizeof(srvbin), "%s/anchorage-server", bindir);
	snprintf(clibin, sizeof(clibin), "%s/anchorage", bindir);
	if (sb == NULL)
		sb = srvbin;
	if (cb == NULL)
		cb = clibin;
	if ((tmp = mkdtemp(tmpl)) == NULL)
		die("mkdtemp: %s%s", strerror(errno), "");

	snprintf(p_in, sizeof(p_in), "%s/fashion-mnist/train-images-idx3-ubyte.gz",
	    data);
	x = idx_read(p_in, n, &got);
	n = got;
	snprintf(p_npy, sizeof(p_npy), "%s/train.npy", tmp);
	snprintf(p_ids, sizeof(p_ids), "%s/train.jsonl", tmp);
	snprintf(p_npy10, sizeof(p_npy10), "%s/train10k.npy", tmp);
	snprintf(p_ids10, sizeof(p_ids10), "%s/train10k.jsonl", tmp);
	npy_write(p_npy, x, n);
	ids_write(p_ids, n);
	npy_write(p_npy10, x, n < 10000 ? n : 10000);
	ids_write(p_ids10, n < 10000 ? n : 10000);

	/* (a) in-process */
	snprintf(p_in, sizeof(p_in), "%s/inproc", tmp);
	if (inproc_only && hnsw) {
		/* just the two HNSW adds to compare under perf */
		uint32_t hn = hnsw_n < n ? hnsw_n : n;
		th_f = bench_faiss_hnsw(x, hn, batch);
		emit("faiss_add", "hnsw", hn, th_f, batch, 1, 1, 0);
		th_a = bench_inproc(p_in, x, hn, batch, nosync, 1);
		emit("in_process", "hnsw", hn, th_a, batch, 1, nosync, 0);
		printf("{\"bench\":\"load\",\"case\":\"ratio\",\"index\":"
		    "\"hnsw\",\"in_process_over_faiss_add\":%.3f}\n",
		    th_f / th_a);
	} else {
		ta = bench_inproc(p_in, x, n, batch, nosync, 0);
		emit("in_process", "flat", n, ta, batch, 1, nosync, 0);
	}
	if (inproc_only) {
		free(x);
		snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmp);
		if (!keep && system(cmd) != 0)
			fprintf(stderr, "load_bench: could not remove %s\n", tmp);
		return 0;
	}

	/* (b) server + CLI. The vectors are released first: a forked
	 * child's peak RSS (ru_maxrss) includes the pages it shares with
	 * its parent until exec, which would hide the CLI's own figure. */
	free(x);
	x = NULL;

	snprintf(p_srv, sizeof(p_srv), "%s/srv", tmp);
	snprintf(url, sizeof(url), "ipc://%s/s.sock", tmp);
	snprintf(log, sizeof(log), "%s/server.log", tmp);
	{
		char hp[32];
		http_port = free_port();
		snprintf(hp, sizeof(hp), "127.0.0.1:%u", http_port);
		char *sargv[] = {(char *)sb, "--data", p_srv, "--listen", url,
		    "--http", http_port ? hp : "off",
		    nosync ? "--nosync" : NULL, NULL};
		srv = spawn(sargv, log);
	}
	if (anc_client_open(url, NULL, &cl, &err))
		die("client: %s%s", err.msg, "");
	setup_collection(cl, "fm", 0);
	setup_collection(cl, "fm10k", 0);
	snprintf(log, sizeof(log), "%s/cli.log", tmp);
	t10 = bench_cli(cb, url, "fm10k", p_ids10, p_npy10, batch, inflight,
	    log, &rss10, srv);
	emit("server_cli", "flat", n < 10000 ? n : 10000, t10, batch,
	    inflight, nosync, rss10);
	tb = bench_cli(cb, url, "fm", p_ids, p_npy, batch, inflight, log,
	    &rss60, srv);
	emit("server_cli", "flat", n, tb, batch, inflight, nosync, rss60);
	printf("{\"bench\":\"load\",\"case\":\"ratio\",\"index\":\"flat\","
	    "\"server_cli_over_in_process\":%.3f,\"goal_ratio\":0.8,"
	    "\"goal_vectors_per_s\":50000,\"rss_kb_10k\":%ld,"
	    "\"rss_kb_%uk\":%ld}\n", ta / tb, rss10, n / 1000, rss60);
	fflush(stdout);

	if (hnsw) {
		/* On a shared machine the rate drifts within minutes, so
		 * faiss's add and the two paths take turns for `rounds`
		 * rounds and the ratios are the medians of each round's. */
		uint32_t hn = hnsw_n < n ? hnsw_n : n;
		double r_cli[ROUNDS_MAX], r_in[ROUNDS_MAX], r_one[ROUNDS_MAX];

		for (int r = 0; r < rounds; r++) {
			char coll[32];
			settle(srv);
			snprintf(p_in, sizeof(p_in),
			    "%s/fashion-mnist/train-images-idx3-ubyte.gz", data);
			x = idx_read(p_in, hn, &hn);
			snprintf(p_in, sizeof(p_in), "%s/inproc-hnsw%d", tmp, r);
			th_f1 = bench_faiss_hnsw(x, hn, 0);
			emit("faiss_add_one_call", "hnsw", hn, th_f1, hn, 1, 1, 0);
			th_f = bench_faiss_hnsw(x, hn, batch);
			emit("faiss_add", "hnsw", hn, th_f, batch, 1, 1, 0);
			th_a = bench_inproc(p_in, x, hn, batch, nosync, 1);
			emit("in_process", "hnsw", hn, th_a, batch, 1, nosync, 0);
			snprintf(coll, sizeof(coll), "fmh%d", r);
			setup_collection(cl, coll, 1);
			snprintf(p_npy, sizeof(p_npy), "%s/h.npy", tmp);
			snprintf(p_ids, sizeof(p_ids), "%s/h.jsonl", tmp);
			npy_write(p_npy, x, hn);
			ids_write(p_ids, hn);
			free(x); /* see "(b)" above: keep the CLI's RSS its own */
			x = NULL;
			th_b = bench_cli(cb, url, coll, p_ids, p_npy, batch,
			    inflight, log, &rssh, srv);
			emit("server_cli", "hnsw", hn, th_b, batch, inflight,
			    nosync, rssh);
			r_cli[r] = th_f / th_b;
			r_in[r] = th_f / th_a;
			r_one[r] = th_f1 / th_b;
			printf("{\"bench\":\"load\",\"case\":\"round\","
			    "\"index\":\"hnsw\",\"round\":%d,"
			    "\"server_cli_over_faiss_add\":%.3f,"
			    "\"in_process_over_faiss_add\":%.3f,"
			    "\"server_cli_over_faiss_one_call\":%.3f}\n",
			    r + 1, r_cli[r], r_in[r], r_one[r]);
			fflush(stdout);
		}
		printf("{\"bench\":\"load\",\"case\":\"ratio\",\"index\":\"hnsw\","
		    "\"rounds\":%d,\"server_cli_over_faiss_add\":%.3f,"
		    "\"in_process_over_faiss_add\":%.3f,"
		    "\"server_cli_over_faiss_one_call\":%.3f,\"goal_ratio\":0.8,"
		    "\"server_cli_over_faiss_add_range\":[%.3f,%.3f],"
		    "\"in_process_over_faiss_add_range\":[%.3f,%.3f],"
		    "\"server_cli_over_faiss_one_call_range\":[%.3f,%.3f]}\n",
		    rounds, median(r_cli, rounds), median(r_in, rounds),
		    median(r_one, rounds), min_of(r_cli, rounds),
		    max_of(r_cli, rounds), min_of(r_in, rounds),
		    max_of(r_in, rounds), min_of(r_one, rounds),
		    max_of(r_one, rounds));
		fflush(stdout);
	}

	anc_client_close(cl);
	kill(srv, SIGTERM);
	waitpid(srv, &st, 0);
	free(x);
	if (!keep) {
		snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmp);
		if (system(cmd) != 0)
			fprintf(stderr, "load_bench: could not remove %s\n", tmp);
	} else {
		fprintf(stderr, "load_bench: kept %s\n", tmp);
	}
	return 0;
}
