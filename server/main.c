/*
 * main.c — anchorage-server: command line, signals, start and stop.
 *
 * SIGINT and SIGTERM are blocked in every thread and taken synchronously by
 * main with sigwait, so shutdown runs on an ordinary thread: no work in a
 * signal handler.
 */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "srv_server.h"

#define DEFAULT_DATA "./var/anchorage"
#define DEFAULT_LISTEN "tcp://127.0.0.1:7700"

static void
usage(FILE *f)
{
	fprintf(f,
"usage: anchorage-server [options]\n"
"\n"
"Serve an Anchorage vector store over nng REQ/REP.\n"
"\n"
"options:\n"
"  --data DIR            data directory (default " DEFAULT_DATA ")\n"
"  --listen URL          listen on URL; repeatable: tcp://HOST:PORT,\n"
"                        ipc:///path (default " DEFAULT_LISTEN ")\n"
"  --workers N           worker threads (default 2 x CPUs, at least 4)\n"
"  --max-message BYTES   largest request accepted (default 64 MiB)\n"
"  --max-k N             largest k of a query (default 1000)\n"
"  --map-size BYTES      LMDB map size (default 64 GiB, sparse)\n"
"  --snapshot-every N    snapshot an index after N added vectors\n"
"                        (default 100000; 0 = only at shutdown)\n"
"  --nosync              do not fsync commits (benchmarks only: an\n"
"                        acknowledged write may be lost on power failure)\n"
"  --quiet               only errors on stderr\n"
"  --help                this text\n"
"  --version             print the version\n"
"\n"
"SIGINT/SIGTERM: stop accepting, answer in-flight requests, snapshot the\n"
"indexes, exit 0.\n");
}

static int
parse_u64(const char *opt, const char *s, uint64_t lo, uint64_t hi,
          uint64_t *out)
{
	char *end;
	errno = 0;
	unsigned long long v = strtoull(s, &end, 10);
	if (errno != 0 || end == s || *end != '\0' || s[0] == '-' || v < lo ||
	    v > hi) {
		fprintf(stderr,
		        "anchorage-server: error: %s: '%s' is not a whole "
		        "number in %llu..%llu\n",
		        opt, s, (unsigned long long)lo, (unsigned long long)hi);
		return -1;
	}
	*out = v;
	return 0;
}

int
main(int argc, char **argv)
{
	enum { O_DATA = 256, O_LISTEN, O_WORKERS, O_MAXMSG, O_MAXK, O_MAP,
	       O_SNAP, O_NOSYNC, O_QUIET, O_HELP, O_VERSION };
	static const struct option opts[] = {
		{"data", required_argument, NULL, O_DATA},
		{"listen", required_argument, NULL, O_LISTEN},
		{"workers", required_argument, NULL, O_WORKERS},
		{"max-message", required_argument, NULL, O_MAXMSG},
		{"max-k", required_argument, NULL, O_MAXK},
		{"map-size", required_argument, NULL, O_MAP},
		{"snapshot-every", required_argument, NULL, O_SNAP},
		{"nosync", no_argument, NULL, O_NOSYNC},
		{"quiet", no_argument, NULL, O_QUIET},
		{"help", no_argument, NULL, O_HELP},
		{"version", no_argument, NULL, O_VERSION},
		{NULL, 0, NULL, 0},
	};
	anc_server_config cfg;
	anc_server_config_default(&cfg);
	cfg.data_dir = DEFAULT_DATA;
	uint64_t v;
	int c;

	opterr = 0;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case O_DATA:
			cfg.data_dir = optarg;
			break;
		case O_LISTEN:
			if (cfg.nlisten == ANC_SERVER_MAX_LISTEN) {
				fprintf(stderr, "anchorage-server: error: "
				        "--listen: at most %d URLs\n",
				        ANC_SERVER_MAX_LISTEN);
				return 2;
			}
			cfg.listen[cfg.nlisten++] = optarg;
			break;
		case O_WORKERS:
			if (parse_u64("--workers", optarg, 1, 256, &v))
				return 2;
			cfg.workers = (int)v;
			break;
		case O_MAXMSG:
			if (parse_u64("--max-message", optarg, 1024,
			              UINT32_MAX, &v))
				return 2;
			cfg.limits.max_message = (uint32_t)v;
			break;
		case O_MAXK:
			if (parse_u64("--max-k", optarg, 1, 100000, &v))
				return 2;
			cfg.limits.max_k = (uint32_t)v;
			break;
		case O_MAP:
			if (parse_u64("--map-size", optarg, 1 << 20,
			              UINT64_MAX, &v))
				return 2;
			cfg.db.map_size = v;
			break;
		case O_SNAP:
			if (parse_u64("--snapshot-every", optarg, 0,
			              UINT64_MAX, &v))
				return 2;
			cfg.db.snapshot_every = v;
			break;
		case O_NOSYNC:
			cfg.db.nosync = 1;
			break;
		case O_QUIET:
			cfg.quiet = 1;
			cfg.db.quiet = 1;
			break;
		case O_HELP:
			usage(stdout);
			return 0;
		case O_VERSION:
			printf("anchorage-server %s\n", ANCHORAGE_VERSION);
			return 0;
		default:
			fprintf(stderr, "anchorage-server: error: unknown or "
			        "incomplete option '%s' (see --help)\n",
			        argv[optind - 1]);
			return 2;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "anchorage-server: error: unexpected argument "
		        "'%s' (see --help)\n", argv[optind]);
		return 2;
	}
	if (cfg.nlisten == 0)
		cfg.listen[cfg.nlisten++] = DEFAULT_LISTEN;

	/* Block the stop signals before any thread exists, so that every
	 * thread inherits the mask and only sigwait below takes them. */
	sigset_t stop;
	sigemptyset(&stop);
	sigaddset(&stop, SIGINT);
	sigaddset(&stop, SIGTERM);
	pthread_sigmask(SIG_BLOCK, &stop, NULL);
	signal(SIGPIPE, SIG_IGN);

	struct timespec t0, t1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	anc_error err;
	anc_error_clear(&err);
	anc_server *srv;
	if (anc_server_start(&cfg, &srv, &err) != ANC_OK) {
		fprintf(stderr, "anchorage-server: error: %s: %s\n",
		        anc_errname(err.code), err.msg);
		return 1;
	}
	clock_gettime(CLOCK_MONOTONIC, &t1);
	if (!cfg.quiet) {
		anc_db_open_stats st;
		anc_db_get_open_stats(anc_server_db(srv), &st);
		fprintf(stderr, "anchorage-server %s: data %s: %u indexes "
		        "(%u from snapshots, %u rebuilt, %llu vectors "
		        "replayed), ready in %.3f s\n", ANCHORAGE_VERSION,
		        cfg.data_dir, st.indexes, st.snapshots_loaded,
		        st.rebuilt, (unsigned long long)st.replayed,
		        (double)(t1.tv_sec - t0.tv_sec) +
		            (double)(t1.tv_nsec - t0.tv_nsec) / 1e9);
		for (int i = 0; i < cfg.nlisten; i++)
			fprintf(stderr, "anchorage-server: listening on %s\n",
			        cfg.listen[i]);
	}

	int sig = 0;
	while (sigwait(&stop, &sig) != 0)
		;
	if (!cfg.quiet)
		fprintf(stderr, "anchorage-server: %s received, shutting "
		        "down\n", sig == SIGINT ? "SIGINT" : "SIGTERM");
	if (anc_server_stop(srv, &err) != ANC_OK) {
		fprintf(stderr, "anchorage-server: error: shutdown: %s: %s\n",
		        anc_errname(err.code), err.msg);
		return 1;
	}
	if (!cfg.quiet)
		fprintf(stderr, "anchorage-server: stopped cleanly\n");
	return 0;
}
