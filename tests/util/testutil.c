/*
 * testutil.c — see testutil.h.
 *
 * Design note: child processes (server, CLI) are started with fork + execv,
 * never through a shell, so test arguments need no quoting. The CLI's output
 * goes to unlinked-after-use temporary files rather than pipes: a pipe would
 * need a poll loop over two descriptors to avoid a deadlock when the CLI
 * writes more than a pipe buffer to one of them.
 */
#include "testutil.h"

#include <criterion/criterion.h>
#include <jansson.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <sys/socket.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#ifndef ANC_DATA_DIR
#define ANC_DATA_DIR "../shared/data"
#endif
#ifndef ANC_SERVER_BIN
#define ANC_SERVER_BIN "anchorage-server"
#endif
#ifndef ANC_CLI_BIN
#define ANC_CLI_BIN "anchorage"
#endif

#define TU_MAX_TMPDIRS 16
#define TU_MAX_SERVERS 16
#define TU_MAX_ARGS 64
#define TU_POOL 8
#define TU_START_TIMEOUT 30.0
#define TU_STOP_TIMEOUT 30.0
#define TU_CLI_TIMEOUT 120.0

static char tu_tmpdirs[TU_MAX_TMPDIRS][TU_PATH_MAX];
static int tu_ntmpdirs;
static tu_server *tu_servers[TU_MAX_SERVERS];
static char tu_url[TU_PATH_MAX];
static int tu_url_set;
static char tu_pool[TU_POOL][TU_PATH_MAX];
static int tu_pool_next;

double
tu_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static char *
pool_next(void)
{
	char *p = tu_pool[tu_pool_next];
	tu_pool_next = (tu_pool_next + 1) % TU_POOL;
	return p;
}

static const char *
env_or(const char *name, const char *def)
{
	const char *v = getenv(name);
	return (v != NULL && v[0] != '\0') ? v : def;
}

/* ---- temporary directories and files ---------------------------------------- */

const char *
tu_tmpdir(void)
{
	/* ipc:// paths must fit in sun_path (108 bytes) with a socket name
	 * appended, so a long TMPDIR falls back to /tmp. */
	const char *base = env_or("TMPDIR", "/tmp");
	if (strlen(base) > 60)
		base = "/tmp";
	if (tu_ntmpdirs >= TU_MAX_TMPDIRS)
		cr_assert_fail("tu_tmpdir: more than %d temporary directories in one "
		         "test", TU_MAX_TMPDIRS);
	char *dir = tu_tmpdirs[tu_ntmpdirs];
	snprintf(dir, TU_PATH_MAX, "%s/anc-XXXXXX", base);
	if (mkdtemp(dir) == NULL)
		cr_assert_fail("tu_tmpdir: mkdtemp(%s): %s", dir, strerror(errno));
	tu_ntmpdirs++;
	return dir;
}

int
tu_rmrf(const char *path)
{
	struct stat st;
	if (lstat(path, &st) != 0)
		return errno == ENOENT ? 0 : errno;
	if (!S_ISDIR(st.st_mode))
		return unlink(path) == 0 || errno == ENOENT ? 0 : errno;
	DIR *d = opendir(path);
	if (d == NULL)
		return errno;
	int rc = 0;
	struct dirent *e;
	while ((e = readdir(d)) != NULL) {
		if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
			continue;
		char child[TU_PATH_MAX];
		if (snprintf(child, sizeof child, "%s/%s", path, e->d_name) >=
		    (int)sizeof child) {
			rc = rc ? rc : ENAMETOOLONG;
			continue;
		}
		int r = tu_rmrf(child);
		if (r != 0 && rc == 0)
			rc = r;
	}
	closedir(d);
	if (rmdir(path) != 0 && rc == 0)
		rc = errno;
	return rc;
}

const char *
tu_path(const char *dir, const char *name)
{
	char *p = pool_next();
	if (snprintf(p, TU_PATH_MAX, "%s/%s", dir, name) >= TU_PATH_MAX)
		cr_assert_fail("tu_path: '%s/%s' is longer than %d bytes", dir, name,
		         TU_PATH_MAX - 1);
	return p;
}

const char *
tu_data_path(const char *rel)
{
	return tu_path(env_or("ANC_DATA_DIR", ANC_DATA_DIR), rel);
}

char *
tu_file_read(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	if (f == NULL)
		return NULL;
	size_t cap = 4096, n = 0;
	char *buf = malloc(cap);
	while (buf != NULL) {
		if (n + 1 >= cap) {
			char *nb = realloc(buf, cap * 2);
			if (nb == NULL) {
				free(buf);
				buf = NULL;
				errno = ENOMEM;
				break;
			}
			buf = nb;
			cap *= 2;
		}
		size_t r = fread(buf + n, 1, cap - n - 1, f);
		n += r;
		if (r == 0) {
			if (ferror(f)) {
				int e = errno;
				free(buf);
				buf = NULL;
				errno = e ? e : EIO;
			}
			break;
		}
	}
	fclose(f);
	if (buf == NULL)
		return NULL;
	buf[n] = '\0';
	if (len != NULL)
		*len = n;
	return buf;
}

void
tu_file_write(const char *path, const void *data, size_t len)
{
	if (len == (size_t)-1)
		len = strlen(data);
	FILE *f = fopen(path, "wb");
	if (f == NULL)
		cr_assert_fail("tu_file_write: fopen(%s): %s", path, strerror(errno));
	size_t w = fwrite(data, 1, len, f);
	int e = errno;
	if (fclose(f) != 0 || w != len)
		cr_assert_fail("tu_file_write: writing %s: %s", path, strerror(e));
}

/* ---- text helpers --------------------------------------------------------------- */

char *
tu_last_line(const char *s)
{
	const char *end = s + strlen(s);
	while (end > s && (end[-1] == '\n' || end[-1] == '\r'))
		end--;
	const char *start = end;
	while (start > s && start[-1] != '\n')
		start--;
	size_t n = (size_t)(end - start);
	char *out = malloc(n + 1);
	if (out == NULL)
		return NULL;
	memcpy(out, start, n);
	out[n] = '\0';
	return out;
}

size_t
tu_line_count(const char *s)
{
	size_t n = 0;
	const char *p = s;
	for (; *p != '\0'; p++)
		if (*p == '\n')
			n++;
	if (p > s && p[-1] != '\n')
		n++;
	return n;
}

/* ---- child processes ---------------------------------------------------------------- */

/* Wait for pid up to timeout seconds. Returns 1 and fills *status when it
 * exited, 0 on timeout. */
static int
wait_for(pid_t pid, double timeout, int *status)
{
	double deadline = tu_now() + timeout;
	for (;;) {
		pid_t r = waitpid(pid, status, WNOHANG);
		if (r == pid)
			return 1;
		if (r < 0 && errno != EINTR)
			cr_assert_fail("waitpid(%d): %s", (int)pid, strerror(errno));
		if (tu_now() > deadline)
			return 0;
		struct timespec ts = {0, 5 * 1000 * 1000};
		nanosleep(&ts, NULL);
	}
}

static int
status_code(int status)
{
	if (WIFEXITED(status))
		return WEXITSTATUS(status);
	if (WIFSIGNALED(status))
		return 128 + WTERMSIG(status);
	return 255;
}

/* In the child after fork: make fd 'to' a copy of 'from'; on failure write a
 * note on the (inherited) stderr and exit 127. */
static void
child_dup(int from, int to)
{
	if (from != to && dup2(from, to) < 0) {
		dprintf(2, "testutil: dup2: %s\n", strerror(errno));
		_exit(127);
	}
}

/* ---- a server process ------------------------------------------------------------------ */

static void
server_track(tu_server *srv)
{
	for (int i = 0; i < TU_MAX_SERVERS; i++)
		if (tu_servers[i] == srv)
			return;
	for (int i = 0; i < TU_MAX_SERVERS; i++)
		if (tu_servers[i] == NULL) {
			tu_servers[i] = srv;
			return;
		}
	cr_assert_fail("tu_server_start: more than %d servers in one test",
	         TU_MAX_SERVERS);
}

static void
server_untrack(tu_server *srv)
{
	for (int i = 0; i < TU_MAX_SERVERS; i++)
		if (tu_servers[i] == srv)
			tu_servers[i] = NULL;
}

const char *
tu_ipc_url(const char *dir, const char *name)
{
	char *p = pool_next();
	if (snprintf(p, TU_PATH_MAX, "ipc://%s/%s", dir, name) >= 100)
		cr_assert_fail("tu_ipc_url: ipc://%s/%s is too long for a unix "
		         "socket path", dir, name);
	return p;
}

char *
tu_server_log_tail(const tu_server *srv, size_t max)
{
	size_t len = 0;
	char *all = tu_file_read(srv->log, &len);
	if (all == NULL)
		return strdup("(no server log)");
	if (len > max) {
		memmove(all, all + len - max, max + 1);
	}
	return all;
}

static void
server_fail(tu_server *srv, const char *what)
{
	char *tail = tu_server_log_tail(srv, 2000);
	tu_server_kill(srv);
	cr_log_error("server log tail (%s):\n%s", srv->log, tail ? tail : "");
	char msg[2600];
	snprintf(msg, sizeof msg, "%s; server log tail:\n%s", what,
	         tail ? tail : "");
	free(tail);
	cr_assert_fail("%s", msg);
}

void
tu_server_startv(tu_server *srv, const char *datadir, const char *url,
                 const char *const *extra)
{
	memset(srv, 0, sizeof *srv);
	snprintf(srv->url, sizeof srv->url, "%s", url);
	snprintf(srv->datadir, sizeof srv->datadir, "%s", datadir);
	snprintf(srv->log, sizeof srv->log, "%s.server.log", datadir);
	if (mkdir(datadir, 0700) != 0 && errno != EEXIST)
		cr_assert_fail("tu_server_start: mkdir(%s): %s", datadir,
		         strerror(errno));
	/* A SIGKILLed server leaves its ipc socket file behind. */
	if (strncmp(url, "ipc://", 6) == 0)
		(void)unlink(url + 6); /* absent is fine */

	const char *argv[TU_MAX_ARGS];
	int n = 0;
	argv[n++] = env_or("ANC_SERVER_BIN", ANC_SERVER_BIN);
	argv[n++] = "--data";
	argv[n++] = datadir;
	argv[n++] = "--listen";
	argv[n++] = url;
	for (; extra != NULL && *extra != NULL; extra++) {
		if (n >= TU_MAX_ARGS - 1)
			cr_assert_fail("tu_server_start: too many arguments");
		argv[n++] = *extra;
	}
	argv[n] = NULL;

	int logfd = open(srv->log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC,
	                 0600);
	if (logfd < 0)
		cr_assert_fail("tu_server_start: open(%s): %s", srv->log,
		         strerror(errno));
	dprintf(logfd, "---- testutil: starting %s --data %s --listen %s\n",
	        argv[0], datadir, url);

	double t0 = tu_now();
	pid_t parent = getpid();
	pid_t pid = fork();
	if (pid < 0) {
		int e = errno;
		close(logfd);
		cr_assert_fail("tu_server_start: fork: %s", strerror(e));
	}
	if (pid == 0) {
		/* Die with the test process, whatever happens to it. */
		(void)prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (getppid() != parent)
			_exit(127);
		int devnull = open("/dev/null", O_RDONLY);
		if (devnull >= 0)
			child_dup(devnull, 0);
		child_dup(logfd, 1);
		child_dup(logfd, 2);
		execv(argv[0], (char *const *)argv);
		dprintf(2, "testutil: execv(%s): %s\n", argv[0],
		        strerror(errno));
		_exit(127);
	}
	close(logfd);
	srv->pid = pid;
	server_track(srv);
	tu_cli_set_url(url);

	/* For ipc://, wait for the socket file before dialling: nng's
	 * reconnect back-off would otherwise add up to a few hundred ms to
	 * the measured start-up time. */
	double deadline = t0 + TU_START_TIMEOUT;
	if (strncmp(url, "ipc://", 6) == 0) {
		struct stat st;
		while (stat(url + 6, &st) != 0 && tu_now() < deadline) {
			int status;
			if (waitpid(pid, &status, WNOHANG) == pid) {
				srv->pid = 0;
				server_untrack(srv);
				char what[800];
				snprintf(what, sizeof what,
				         "anchorage-server exited with status %d "
				         "before listening on %s",
				         status_code(status), url);
				server_fail(srv, what);
			}
			struct timespec ts = {0, 2 * 1000 * 1000};
			nanosleep(&ts, NULL);
		}
	}
	anc_client_options opt;
	anc_client_options_default(&opt);
	opt.timeout_ms = 500;
	anc_client *c = NULL;
	anc_error err = {0};
	if (anc_client_open(url, &opt, &c, &err) != 0) {
		char what[700];
		snprintf(what, sizeof what, "anc_client_open(%s): %s", url,
		         err.msg);
		server_fail(srv, what);
	}
	for (;;) {
		anc_resp *resp = NULL;
		int rc = anc_client_ping(c, &resp, &err);
		anc_resp_free(resp);
		if (rc == 0)
			break;
		int status;
		if (waitpid(pid, &status, WNOHANG) == pid) {
			srv->pid = 0;
			server_untrack(srv);
			anc_client_close(c);
			char what[800];
			snprintf(what, sizeof what,
			         "anchorage-server exited with status %d before "
			         "answering a ping on %s",
			         status_code(status), url);
			server_fail(srv, what);
		}
		if (tu_now() > deadline) {
			anc_client_close(c);
			char what[900];
			snprintf(what, sizeof what,
			         "anchorage-server did not answer a ping on %s "
			         "within %.0f s (last error: %s: %s)",
			         url, TU_START_TIMEOUT, anc_errname(rc), err.msg);
			server_fail(srv, what);
		}
		struct timespec ts = {0, 20 * 1000 * 1000};
		nanosleep(&ts, NULL);
	}
	anc_client_close(c);
	srv->start_seconds = tu_now() - t0;
}

void
tu_server_start(tu_server *srv, const char *datadir, const char *url, ...)
{
	const char *extra[TU_MAX_ARGS];
	int n = 0;
	va_list ap;
	va_start(ap, url);
	const char *a;
	while ((a = va_arg(ap, const char *)) != NULL) {
		if (n >= TU_MAX_ARGS - 1) {
			va_end(ap);
			cr_assert_fail("tu_server_start: too many arguments");
		}
		extra[n++] = a;
	}
	va_end(ap);
	extra[n] = NULL;
	tu_server_startv(srv, datadir, url, extra);
}

void
tu_server_stop(tu_server *srv)
{
	if (srv == NULL || srv->pid <= 0)
		return;
	if (kill(srv->pid, SIGTERM) != 0 && errno != ESRCH)
		cr_assert_fail("tu_server_stop: kill(%d, SIGTERM): %s", (int)srv->pid,
		         strerror(errno));
	int status = 0;
	if (!wait_for(srv->pid, TU_STOP_TIMEOUT, &status))
		server_fail(srv, "anchorage-server did not exit within 30 s of "
		                 "SIGTERM");
	srv->pid = 0;
	server_untrack(srv);
	int code = status_code(status);
	if (code != 0) {
		char what[200];
		snprintf(what, sizeof what,
		         "anchorage-server exited with status %d after SIGTERM "
		         "(expected 0)", code);
		server_fail(srv, what);
	}
}

void
tu_server_kill(tu_server *srv)
{
	if (srv == NULL || srv->pid <= 0)
		return;
	(void)kill(srv->pid, SIGKILL); /* ESRCH: already gone, reaped below */
	int status;
	while (waitpid(srv->pid, &status, 0) < 0 && errno == EINTR)
		;
	srv->pid = 0;
	server_untrack(srv);
}

anc_client *
tu_client(const tu_server *srv)
{
	anc_client_options opt;
	anc_client_options_default(&opt);
	opt.timeout_ms = 30000;
	anc_client *c = NULL;
	anc_error err = {0};
	int rc = anc_client_open(srv->url, &opt, &c, &err);
	if (rc != 0)
		cr_assert_fail("anc_client_open(%s): %s: %s", srv->url,
		         anc_errname(rc), err.msg);
	return c;
}

/* ---- the anchorage CLI ------------------------------------------------------------------ */

void
tu_cli_set_url(const char *url)
{
	tu_url_set = url != NULL;
	snprintf(tu_url, sizeof tu_url, "%s", url ? url : "");
}

/* An unlinked temporary file, opened read/write. */
static int
tmpfile_fd(void)
{
	char path[TU_PATH_MAX];
	const char *base = env_or("TMPDIR", "/tmp");
	snprintf(path, sizeof path, "%s/anc-cli-XXXXXX", base);
	int fd = mkstemp(path);
	if (fd < 0)
		cr_assert_fail("tu_cli: mkstemp(%s): %s", path, strerror(errno));
	(void)unlink(path); /* the descriptor keeps it alive */
	return fd;
}

static char *
fd_slurp(int fd)
{
	off_t size = lseek(fd, 0, SEEK_END);
	if (size < 0 || lseek(fd, 0, SEEK_SET) < 0)
		cr_assert_fail("tu_cli: lseek: %s", strerror(errno));
	char *buf = malloc((size_t)size + 1);
	if (buf == NULL)
		cr_assert_fail("tu_cli: out of memory for %lld bytes of output",
		         (long long)size);
	size_t n = 0;
	while (n < (size_t)size) {
		ssize_t r = read(fd, buf + n, (size_t)size - n);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		n += (size_t)r;
	}
	buf[n] = '\0';
	return buf;
}

int
tu_run(const char *const *argv, const char *stdin_data, char **out,
       char **err, double timeout)
{
	int ofd = tmpfile_fd(), efd = tmpfile_fd(), ifd = -1;
	if (stdin_data != NULL) {
		ifd = tmpfile_fd();
		size_t len = strlen(stdin_data);
		if (write(ifd, stdin_data, len) != (ssize_t)len ||
		    lseek(ifd, 0, SEEK_SET) != 0)
			cr_assert_fail("tu_run: writing stdin: %s",
			               strerror(errno));
	}
	pid_t parent = getpid();
	pid_t pid = fork();
	if (pid < 0)
		cr_assert_fail("tu_run: fork: %s", strerror(errno));
	if (pid == 0) {
		(void)prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (getppid() != parent)
			_exit(127);
		if (ifd < 0)
			ifd = open("/dev/null", O_RDONLY);
		if (ifd >= 0)
			child_dup(ifd, 0);
		child_dup(ofd, 1);
		child_dup(efd, 2);
		execv(argv[0], (char *const *)argv);
		dprintf(2, "testutil: execv(%s): %s\n", argv[0],
		        strerror(errno));
		_exit(127);
	}
	if (ifd >= 0)
		close(ifd);
	int status = 0;
	if (!wait_for(pid, timeout, &status)) {
		(void)kill(pid, SIGKILL);
		(void)waitpid(pid, &status, 0);
		close(ofd);
		close(efd);
		cr_assert_fail("tu_run: %s %s did not finish within %.0f s",
		               argv[0], argv[1] ? argv[1] : "", timeout);
	}
	if (out != NULL)
		*out = fd_slurp(ofd);
	if (err != NULL)
		*err = fd_slurp(efd);
	close(ofd);
	close(efd);
	return status_code(status);
}

int
tu_cliv(const char *url, const char *stdin_data, char **out, char **err,
        const char *const *args)
{
	const char *argv[TU_MAX_ARGS + 4];
	int n = 0;
	argv[n++] = env_or("ANC_CLI_BIN", ANC_CLI_BIN);
	if (url != NULL) {
		argv[n++] = "--server";
		argv[n++] = url;
	}
	for (; args != NULL && *args != NULL; args++) {
		if (n >= TU_MAX_ARGS)
			cr_assert_fail("tu_cli: too many arguments");
		argv[n++] = *args;
	}
	argv[n] = NULL;
	return tu_run(argv, stdin_data, out, err, TU_CLI_TIMEOUT);
}

const char *
tu_server_bin(void)
{
	return env_or("ANC_SERVER_BIN", ANC_SERVER_BIN);
}

int
tu_cli(char **out, char **err, ...)
{
	const char *args[TU_MAX_ARGS + 1];
	int n = 0;
	va_list ap;
	va_start(ap, err);
	const char *a;
	while ((a = va_arg(ap, const char *)) != NULL) {
		if (n >= TU_MAX_ARGS) {
			va_end(ap);
			cr_assert_fail("tu_cli: too many arguments");
		}
		args[n++] = a;
	}
	va_end(ap);
	args[n] = NULL;
	return tu_cliv(tu_url_set ? tu_url : NULL, NULL, out, err, args);
}

/* ---- cleanup -------------------------------------------------------------------------- */

void
tu_cleanup(void)
{
	for (int i = 0; i < TU_MAX_SERVERS; i++)
		if (tu_servers[i] != NULL)
			tu_server_kill(tu_servers[i]);
	for (int i = 0; i < tu_ntmpdirs; i++)
		(void)tu_rmrf(tu_tmpdirs[i]); /* best effort in teardown */
	tu_ntmpdirs = 0;
	tu_cli_set_url(NULL);
}

json_t *
tu_cli_json(const char *url, size_t flags, const char *const *args)
{
	char *out = NULL, *err = NULL, what[256] = "";
	json_error_t je;
	json_t *o;
	int st;

	/* The command line, for the failure messages. */
	for (size_t i = 0; args[i] != NULL && strlen(what) < 200; i++)
		snprintf(what + strlen(what), sizeof what - strlen(what), "%s%s",
		         i ? " " : "", args[i]);
	st = tu_cliv(url, NULL, &out, &err, args);
	cr_assert_eq(st, 0, "%s: exit %d: %s", what, st, err);
	o = json_loads(out, flags, &je);
	cr_assert_not_null(o, "%s: not JSON: %s", what, out);
	free(out);
	free(err);
	return o;
}

/* A TCP socket bound to a free loopback port (*port), listening when
 * listening is 1. */
static int
loopback_socket(int listening, unsigned *port)
{
	struct sockaddr_in a;
	socklen_t l = sizeof a;
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	cr_assert_geq(fd, 0);
	memset(&a, 0, sizeof a);
	a.sin_family = AF_INET;
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	cr_assert_eq(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
	if (listening)
		cr_assert_eq(listen(fd, 4), 0);
	cr_assert_eq(getsockname(fd, (struct sockaddr *)&a, &l), 0);
	*port = ntohs(a.sin_port);
	return fd;
}

int
tu_listen_loopback(unsigned *port)
{
	return loopback_socket(1, port);
}

unsigned
tu_free_port(void)
{
	unsigned port;
	close(loopback_socket(0, &port));
	return port;
}
