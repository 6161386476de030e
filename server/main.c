/*
 * main.c — anchorage-server: command line, signals, start and stop.
 *
 * SIGINT and SIGTERM: the handler only writes the signal number to a pipe
 * (async-signal-safe), and main, blocked reading that pipe, runs the
 * shutdown on an ordinary thread. Blocking the signals and using sigwait
 * would not do: OpenBLAS starts its thread pool from a library constructor,
 * before main can block anything, and a process-directed signal may land on
 * one of those threads and kill the process with the default action. A
 * handler runs on whichever thread receives the signal.
 */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <unistd.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include <jansson.h>

#include "srv_http.h"
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
"  --config FILE         JSON file with API keys, TLS and limits (see\n"
"                        README, \"Durability and security\")\n"
"  --data DIR            data directory (default " DEFAULT_DATA ")\n"
"  --listen URL          listen on URL; repeatable: tcp://HOST:PORT,\n"
"                        tls+tcp://HOST:PORT (certificate in --config),\n"
"                        ipc:///path (default " DEFAULT_LISTEN ")\n"
"  --workers N           worker threads (default 2 x CPUs, at least 4)\n"
"  --max-message BYTES   largest request accepted (default 64 MiB)\n"
"  --max-k N             largest k of a query (default 1000, at most 4096)\n"
"  --max-connections N   open connections at once (default 1024)\n"
"  --map-size BYTES      LMDB map size (default 64 GiB, sparse)\n"
"  --snapshot-every N    snapshot an index after N added vectors\n"
"                        (default 100000; 0 = only at shutdown)\n"
"  --nosync              do not fsync commits (benchmarks only: an\n"
"                        acknowledged write may be lost on power failure)\n"
"  --quiet               only errors on stderr\n"
"  --http ADDR           HTTP listener for /metrics, /healthz, /readyz,\n"
"                        /api/v1/drift and the status page at /\n"
"                        (default $ANCHORAGE_HTTP, else 127.0.0.1:7701;\n"
"                        \"off\" to disable; the built-in default\n"
"                        port busy is a warning, a chosen one an error)\n"
"  --drift-window N      query vectors per contract in the drift window\n"
"                        (default 1024)\n"
"  --drift-interval S    seconds between background drift reports\n"
"                        (default 60)\n"
"  --drift-history N     drift reports kept per contract (default 1440)\n"
"  --drift-off           no drift tracking (benchmarks)\n"
"  --help                this text\n"
"  --version             print the version\n"
"  --gen-key ID ROLE     make a new API key with role read, write or\n"
"                        admin: prints the key once, and the entry to put\n"
"                        in the --config file's \"keys\" (the server keeps\n"
"                        only the salted hash)\n"
"\n"
"Without API keys the server accepts only loopback and ipc:// listeners.\n"
"\n"
"SIGINT/SIGTERM: stop accepting, answer in-flight requests, snapshot the\n"
"indexes, exit 0.\n");
}

/* --gen-key ID ROLE: print a new key and its config entry. */
static int
gen_key(const char *id, int nrest, char **rest)
{
	char key[64], salt[33], hash[65];
	anc_error err;
	anc_auth *probe = NULL;

	anc_error_clear(&err);
	if (nrest != 1) {
		fprintf(stderr, "anchorage-server: error: --gen-key ID ROLE: "
		        "expected one ROLE (read, write or admin) after the "
		        "ID\n");
		return 2;
	}
	/* Validate id and role exactly as the config loader will. */
	if (anc_auth_keygen(key, salt, hash, &err) != ANC_OK ||
	    anc_auth_create(&probe, &err) != ANC_OK ||
	    anc_auth_add(probe, id, rest[0], salt, hash, &err) != ANC_OK) {
		anc_auth_free(probe);
		fprintf(stderr, "anchorage-server: error: %s: %s\n",
		        anc_errname(err.code), err.msg);
		return 2;
	}
	anc_auth_free(probe);
	/* The id as a JSON string: quotes, backslashes and control
	 * characters escaped, so that the entry pastes as it is. */
	json_t *js = json_string(id);
	char *jid = js != NULL ? json_dumps(js, JSON_ENCODE_ANY) : NULL;
	json_decref(js);
	if (jid == NULL) {
		fprintf(stderr, "anchorage-server: error: --gen-key: the ID is "
		        "not valid UTF-8 (or out of memory)\n");
		return 2;
	}
	printf("API key (give it to the client; it is not stored anywhere):\n"
	       "  %s\n"
	       "Entry for the \"keys\" array of the --config file:\n"
	       "  {\"id\": %s, \"role\": \"%s\", \"salt\": \"%s\", "
	       "\"sha256\": \"%s\"}\n", key, jid, rest[0], salt, hash);
	free(jid);
	/* The key exists nowhere else: if it did not reach stdout, say so
	 * and fail rather than exit 0 with it lost. */
	if (fflush(stdout) != 0 || ferror(stdout)) {
		fprintf(stderr, "anchorage-server: error: --gen-key: writing "
		        "the key to stdout failed: %s (nothing is stored; run "
		        "it again)\n", strerror(errno));
		return 2;
	}
	return 0;
}

static int stop_pipe[2] = {-1, -1};

static void
on_stop_signal(int sig)
{
	int saved = errno;
	unsigned char b = (unsigned char)sig;
	/* A full pipe means a stop is already pending: nothing to add. */
	(void)!write(stop_pipe[1], &b, 1);
	errno = saved;
}

static int
install_stop_handlers(void)
{
	struct sigaction sa;
	if (pipe(stop_pipe) != 0 ||
	    fcntl(stop_pipe[0], F_SETFD, FD_CLOEXEC) != 0 ||
	    fcntl(stop_pipe[1], F_SETFD, FD_CLOEXEC) != 0 ||
	    fcntl(stop_pipe[1], F_SETFL, O_NONBLOCK) != 0)
		return -1;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_stop_signal;
	sigemptyset(&sa.sa_mask);
	sa.sa_flags = SA_RESTART;
	if (sigaction(SIGINT, &sa, NULL) != 0 ||
	    sigaction(SIGTERM, &sa, NULL) != 0)
		return -1;
	signal(SIGPIPE, SIG_IGN);
	return 0;
}

static int
wait_stop_signal(void)
{
	unsigned char b = 0;
	for (;;) {
		ssize_t n = read(stop_pipe[0], &b, 1);
		if (n == 1)
			return b;
		if (n < 0 && errno == EINTR)
			continue;
		return SIGTERM; /* cannot happen: treat as a stop */
	}
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
		        "anchorage-server: error: %s: expected a whole number "
		        "in %llu..%llu%s, got '%s'\n",
		        opt, (unsigned long long)lo, (unsigned long long)hi,
		        strcmp(opt, "--map-size") == 0
		            ? " (bytes: 1048576 is 1 MiB, 68719476736 64 GiB)"
		            : "", s);
		return -1;
	}
	*out = v;
	return 0;
}

int
main(int argc, char **argv)
{
	enum { O_CONFIG = 200, O_MAXCONN, O_GENKEY, O_DATA = 256, O_LISTEN, O_WORKERS, O_MAXMSG, O_MAXK, O_MAP,
	       O_SNAP, O_NOSYNC, O_QUIET, O_HELP, O_VERSION, O_HTTP = 300,
	       O_DWIN, O_DINT, O_DHIST, O_DOFF };
	static const struct option opts[] = {
		{"config", required_argument, NULL, O_CONFIG},
		{"max-connections", required_argument, NULL, O_MAXCONN},
		{"gen-key", required_argument, NULL, O_GENKEY},
		{"data", required_argument, NULL, O_DATA},
		{"listen", required_argument, NULL, O_LISTEN},
		{"workers", required_argument, NULL, O_WORKERS},
		{"max-message", required_argument, NULL, O_MAXMSG},
		{"max-k", required_argument, NULL, O_MAXK},
		{"map-size", required_argument, NULL, O_MAP},
		{"snapshot-every", required_argument, NULL, O_SNAP},
		{"nosync", no_argument, NULL, O_NOSYNC},
		{"quiet", no_argument, NULL, O_QUIET},
		{"http", required_argument, NULL, O_HTTP},
		{"drift-window", required_argument, NULL, O_DWIN},
		{"drift-interval", required_argument, NULL, O_DINT},
		{"drift-history", required_argument, NULL, O_DHIST},
		{"drift-off", no_argument, NULL, O_DOFF},
		{"help", no_argument, NULL, O_HELP},
		{"version", no_argument, NULL, O_VERSION},
		{NULL, 0, NULL, 0},
	};
	anc_server_config cfg;
	anc_server_config_default(&cfg);
	cfg.data_dir = DEFAULT_DATA;
	/* $ANCHORAGE_HTTP overrides the built-in default (the test suite sets
	 * it to "off" so that parallel test servers never share a port). */
	cfg.http = getenv("ANCHORAGE_HTTP") != NULL &&
	                   getenv("ANCHORAGE_HTTP")[0] != '\0'
	               ? getenv("ANCHORAGE_HTTP")
	               : SRV_HTTP_DEFAULT;
	cfg.http_optional = 1;
	/* An address in $ANCHORAGE_HTTP is a choice, like --http: busy, it
	 * is an error (only the built-in default falls back to none). */
	if (getenv("ANCHORAGE_HTTP") != NULL &&
	    getenv("ANCHORAGE_HTTP")[0] != '\0') {
		cfg.http_name = "ANCHORAGE_HTTP";
		cfg.http_optional = 0;
	}
	cfg.close_watchdog_s = 10; /* see anc_server_config */
	if (getenv("ANCHORAGE_TEST_CLOSE_HANG") != NULL) /* its test: faster */
		cfg.close_watchdog_s = 2;
	uint64_t v;
	int c;
	const char *config = NULL, *genkey = NULL;
	uint32_t maxconn = 0, maxmsg = 0, maxk = 0;
	anc_auth *auth = NULL;
	char *strings = NULL;
	int status = 1;

	opterr = 0;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case O_CONFIG:
			config = optarg;
			break;
		case O_MAXCONN:
			if (parse_u64("--max-connections", optarg, 1, 1000000,
			              &v))
				return 2;
			maxconn = (uint32_t)v;
			break;
		case O_GENKEY:
			genkey = optarg;
			break;
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
			maxmsg = (uint32_t)v; /* over the --config file's */
			break;
		case O_MAXK:
			if (parse_u64("--max-k", optarg, 1, ANC_MAX_K_CEILING,
			              &v))
				return 2;
			maxk = (uint32_t)v;
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
		case O_HTTP:
			cfg.http = optarg;
			cfg.http_optional = 0;
			cfg.http_name = NULL;
			break;
		case O_DWIN:
			if (parse_u64("--drift-window", optarg, 16, 65536, &v))
				return 2;
			cfg.db.drift_window = (uint32_t)v;
			break;
		case O_DINT:
			if (parse_u64("--drift-interval", optarg, 1, 86400, &v))
				return 2;
			cfg.db.drift_interval = (uint32_t)v;
			break;
		case O_DHIST:
			if (parse_u64("--drift-history", optarg, 1, 1000000, &v))
				return 2;
			cfg.db.drift_history = (uint32_t)v;
			break;
		case O_DOFF:
			cfg.db.drift_off = 1;
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
			/* A short option (-x, perhaps grouped as -xy) is
			 * named by optopt; argv[optind - 1] may be the
			 * word before it. */
			if (optopt > 0 && optopt < 128 && isalnum(optopt))
				fprintf(stderr, "anchorage-server: error: unknown "
				        "option '-%c' (see --help)\n", optopt);
			else
				fprintf(stderr, "anchorage-server: error: unknown "
				        "or incomplete option '%s' (see --help)\n",
				        argv[optind - 1]);
			return 2;
		}
	}
	if (genkey != NULL)
		return gen_key(genkey, argc - optind, argv + optind);
	if (optind < argc) {
		fprintf(stderr, "anchorage-server: error: unexpected argument "
		        "'%s' (see --help)\n", argv[optind]);
		return 2;
	}
	anc_error err;
	anc_error_clear(&err);
	if (config != NULL) {
		/* Command-line --listen URLs come first; the file's follow. */
		if (anc_server_config_load(&cfg, config, &auth, &strings, &err)
		    != ANC_OK) {
			fprintf(stderr, "anchorage-server: error: %s: %s\n",
			        anc_errname(err.code), err.msg);
			return 2;
		}
	}
	/* Every connection holds a descriptor: the soft limit (often 1024)
	 * would cap --max-connections and leave nothing for LMDB and the
	 * HTTP listener, so take what the hard limit allows. */
	{
		struct rlimit rl;
		if (getrlimit(RLIMIT_NOFILE, &rl) == 0 &&
		    rl.rlim_cur < rl.rlim_max && rl.rlim_cur < (1u << 20)) {
			rl.rlim_cur = rl.rlim_max < (1u << 20) ? rl.rlim_max
			                                       : (1u << 20);
			(void)setrlimit(RLIMIT_NOFILE, &rl);
		}
	}
	/* The command line wins over the file, for every option both
	 * have. */
	if (maxconn != 0)
		cfg.max_connections = maxconn;
	if (maxmsg != 0)
		cfg.limits.max_message = maxmsg;
	if (maxk != 0)
		cfg.limits.max_k = maxk;
	if (cfg.nlisten == 0)
		cfg.listen[cfg.nlisten++] = DEFAULT_LISTEN;

	if (install_stop_handlers() != 0) {
		fprintf(stderr, "anchorage-server: error: INTERNAL: signal "
		        "handlers: %s\n", strerror(errno));
		goto leave;
	}

	struct timespec t0, t1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	anc_server *srv;
	if (anc_server_start(&cfg, &srv, &err) != ANC_OK) {
		fprintf(stderr, "anchorage-server: error: %s: %s\n",
		        anc_errname(err.code), err.msg);
		goto leave;
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
		if (anc_server_http_url(srv) != NULL)
			fprintf(stderr, "anchorage-server: http on %s (status "
			        "page, /metrics, /api/v1/drift)\n",
			        anc_server_http_url(srv));
		if (anc_auth_count(auth) == 0)
			fprintf(stderr, "anchorage-server: no API keys "
			        "configured: every client is trusted, so only "
			        "loopback and ipc:// listeners are allowed\n");
		else
			fprintf(stderr, "anchorage-server: %u API keys "
			        "configured: every request must carry one\n",
			        anc_auth_count(auth));
	}

	int sig = wait_stop_signal();
	if (!cfg.quiet)
		fprintf(stderr, "anchorage-server: %s received, shutting "
		        "down\n", sig == SIGINT ? "SIGINT" : "SIGTERM");
	if (anc_server_stop(srv, &err) != ANC_OK) {
		fprintf(stderr, "anchorage-server: error: shutdown: %s: %s\n",
		        anc_errname(err.code), err.msg);
		goto leave;
	}
	if (!cfg.quiet)
		fprintf(stderr, "anchorage-server: stopped cleanly\n");
	status = 0;
leave:
	anc_auth_free(auth);
	free(strings);
	return status;
}
