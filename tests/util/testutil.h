/*
 * testutil.h — helpers shared by the criterion unit and end-to-end tests:
 * temporary directories, paths into the shared data folder, a real
 * anchorage-server process, and running the anchorage CLI.
 *
 * Design note
 * -----------
 * Criterion runs every Test() in its own child process, so everything here is
 * single-threaded and keeps its state in that process. The helpers that can
 * fail in a way a test cannot recover from (a server that does not come up, a
 * fork that fails) report through criterion (cr_assert_fail) with the
 * cause, instead of returning a status every test would have to check.
 *
 * A test must never leave a server behind, even when an assertion aborts it:
 *   - every server started by tu_server_start is remembered, and
 *     tu_cleanup() (use it as the suite's .fini) kills any
 *     that still run and removes the temporary directories made by
 *     tu_tmpdir();
 *   - the server child also gets PR_SET_PDEATHSIG(SIGKILL), so it dies with
 *     the test process if even the fini hook does not run.
 *
 * Compile definitions (set by CMakeLists.txt for the anc_testutil library):
 *   ANC_DATA_DIR    absolute path of ../shared/data (env ANC_DATA_DIR wins)
 *   ANC_SERVER_BIN  absolute path of anchorage-server (env ANC_SERVER_BIN wins)
 *   ANC_CLI_BIN     absolute path of anchorage (env ANC_CLI_BIN wins)
 */
#ifndef ANC_TESTUTIL_H
#define ANC_TESTUTIL_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "anc_client.h"

#ifdef __cplusplus
extern "C" {
#endif

#define TU_PATH_MAX 1024

/* ---- temporary directories and files -------------------------------------- */

/* Make a fresh directory "$TMPDIR/anc-XXXXXX" (or /tmp when TMPDIR is unset
 * or too long for ipc:// socket paths) and return its path in a static
 * buffer owned by testutil, valid until tu_cleanup(). The directory is
 * removed by tu_cleanup(). Fails the test when it cannot be made. */
const char *tu_tmpdir(void);

/* Remove path and everything under it (like rm -rf). Returns 0, or errno of
 * the first failure (a missing path is not a failure). */
int tu_rmrf(const char *path);

/* Join dir and name into a buffer from a small rotating pool (8 entries): the
 * result stays valid for the next 7 calls of tu_path/tu_data_path. Copy it if
 * it must live longer. */
const char *tu_path(const char *dir, const char *name);

/* Absolute path of rel inside the shared data folder (env ANC_DATA_DIR, else
 * the compile definition), e.g. tu_data_path("sotu-2models/sotu_chunks.jsonl").
 * Same rotating pool as tu_path. */
const char *tu_data_path(const char *rel);

/* Read a whole file into a malloc'd NUL-terminated buffer (free() it); *len
 * (may be NULL) gets the size without the NUL. Returns NULL with errno set on
 * failure. */
char *tu_file_read(const char *path, size_t *len);

/* Write len bytes (len (size_t)-1: strlen) to path, replacing it. Fails the
 * test on error. */
void tu_file_write(const char *path, const void *data, size_t len);

/* ---- text helpers ----------------------------------------------------------- */

/* The last non-empty line of s, copied into a malloc'd string without its
 * newline (free() it); "" (malloc'd) when s has none. NULL only on ENOMEM. */
char *tu_last_line(const char *s);

/* Number of lines in s (a final line without '\n' counts). */
size_t tu_line_count(const char *s);

/* ---- a server process ------------------------------------------------------- */

typedef struct tu_server {
	pid_t pid;                 /* 0 when not running */
	char url[TU_PATH_MAX];     /* the first --listen URL */
	char datadir[TU_PATH_MAX];
	char log[TU_PATH_MAX];     /* stderr + stdout of the server */
	double start_seconds;      /* fork to first successful ping */
} tu_server;

/* An ipc:// URL for a socket named name inside dir, in a rotating buffer
 * (tu_path's pool). */
const char *tu_ipc_url(const char *dir, const char *name);

/* Fork/exec ANC_SERVER_BIN --data datadir --listen url [extra args...]
 * (a NULL-terminated list of extra argv strings), with stdout and stderr
 * appended to <datadir>/../<basename(datadir)>.server.log, then poll
 * anc_client_ping until it answers (up to 30 s). If the process exits early
 * or does not answer in time, it is killed and the test fails with the tail
 * of the log. The caller's srv is filled; it must stay valid while the server
 * runs (testutil keeps a pointer to it for tu_cleanup). */
void tu_server_start(tu_server *srv, const char *datadir, const char *url,
                     ...);

/* Same, with the extra arguments as a NULL-terminated array (may be NULL). */
void tu_server_startv(tu_server *srv, const char *datadir, const char *url,
                      const char *const *extra);

/* SIGTERM, then wait up to 30 s: the test fails unless the server exits
 * with status 0 (the log tail is shown). If it does not exit in time it is
 * SIGKILLed before failing. No-op when srv is not running. */
void tu_server_stop(tu_server *srv);

/* SIGKILL and reap. No-op when not running. Never fails the test. */
void tu_server_kill(tu_server *srv);

/* The last max bytes of the server's log, malloc'd (free() it). */
char *tu_server_log_tail(const tu_server *srv, size_t max);

/* Open a client to srv->url with a 30 s timeout. Fails the test on error. */
anc_client *tu_client(const tu_server *srv);

/* ---- the anchorage CLI -------------------------------------------------------- */

/* Set the URL that tu_cli passes as --server (tu_server_start sets it to the
 * server it started; NULL: pass no --server). The string is copied. */
void tu_cli_set_url(const char *url);

/* Run ANC_CLI_BIN --server URL <args...> (NULL-terminated), wait for it (up
 * to 120 s, then SIGKILL and fail), and return its exit status (0..255, or
 * 128+signal when killed by a signal). *out and *err (each may be NULL) get
 * the captured stdout/stderr, malloc'd and NUL-terminated (free() them). */
int tu_cli(char **out, char **err, ...);

/* Same with an argv array (NULL-terminated), an explicit url (NULL: no
 * --server) and optional stdin contents (NULL: /dev/null). */
int tu_cliv(const char *url, const char *stdin_data, char **out, char **err,
            const char *const *args);

/* tu_cliv without stdin for a command that must exit 0 and print JSON:
 * its stdout parsed by jansson's json_loads with flags
 * (JSON_DISABLE_EOF_CHECK reads the first of several lines). Returns a new
 * reference (json_decref it); anything else fails the test. */
struct json_t *tu_cli_json(const char *url, size_t flags,
                           const char *const *args);

/* Run argv[0] (a path) with argv, capturing stdout/stderr like tu_cliv;
 * SIGKILL and fail the test after timeout seconds. Returns the exit status
 * (128+signal when killed by a signal). */
int tu_run(const char *const *argv, const char *stdin_data, char **out,
           char **err, double timeout);

/* Path of the anchorage-server binary (env ANC_SERVER_BIN wins). */
const char *tu_server_bin(void);

/* ---- cleanup -------------------------------------------------------------------- */

/* Kill every server still running that this process started, and remove the
 * directories made by tu_tmpdir(). Safe to call more than once. Use it as a
 * suite fini hook: TestSuite(e2e_x, .fini = tu_cleanup). */
void tu_cleanup(void);

/* Monotonic clock in seconds. */
double tu_now(void);

/* A free TCP port on 127.0.0.1 (bound and released: a tiny race, fine
 * for tests). Fails the test if none. */
unsigned tu_free_port(void);
/* A socket listening on a free 127.0.0.1 port (*port): someone else's
 * server, for tests of a busy address. close() it. */
int tu_listen_loopback(unsigned *port);

#ifdef __cplusplus
}
#endif
#endif /* ANC_TESTUTIL_H */
