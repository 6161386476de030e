/*
 * e2e_run_test.c — `make run`'s first start (scripts/run.sh): the demo
 * corpus loads through the real server and CLI into a data directory
 * whose path is too long for a socket (the setup socket lives elsewhere),
 * and a first start that did not finish is run again at the next start.
 * ANCHORAGE_SETUP_ONLY stops the script before it serves.
 */
#include <criterion/criterion.h>

#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "testutil.h"

TestSuite(e2e_run, .fini = tu_cleanup);

static int
run_script(char **out, char **err)
{
	char script[TU_PATH_MAX];
	snprintf(script, sizeof script, "%s/scripts/run.sh", ANC_SOURCE_DIR);
	const char *argv[] = {"/bin/bash", script, NULL};
	return tu_run(argv, NULL, out, err, 120);
}

Test(e2e_run, first_start_loads_the_demo_and_resumes)
{
	const char *tmp = tu_tmpdir();
	char data[TU_PATH_MAX], bin[TU_PATH_MAX], demo[TU_PATH_MAX];
	char marker[TU_PATH_MAX + 16], *out = NULL, *err = NULL;
	struct stat st;

	snprintf(demo, sizeof demo, "%s/sotu-2models", ANC_DATA_DIR);
	if (stat(demo, &st) != 0)
		cr_skip_test("no demo corpus at %s", demo);
	/* a data directory whose ipc:// socket path would be over 108 bytes:
	 * a 110-character directory name (the socket limit, plus two) */
	char longname[111];
	memset(longname, 'd', sizeof longname - 1);
	longname[sizeof longname - 1] = '\0';
	snprintf(data, sizeof data, "%s/%s/data", tmp, longname);
	cr_assert_gt(strlen(data) + strlen("/.setup.sock"), 108);
	snprintf(bin, sizeof bin, "%s", ANC_SERVER_BIN);
	snprintf(marker, sizeof marker, "%s/.demo-loading", data);
	setenv("ANCHORAGE_BIN", dirname(bin), 1);
	setenv("ANCHORAGE_DATA", data, 1);
	setenv("ANCHORAGE_DEMO_DATA", demo, 1);
	setenv("ANCHORAGE_SETUP_ONLY", "1", 1);

	cr_assert_eq(run_script(&out, &err), 0, "%s\n%s", out, err);
	cr_expect(strstr(out, "first start: loading the demo corpus") != NULL,
	          "%s", out);
	cr_expect(strstr(out, "loaded 90 records (90 created") != NULL, "%s",
	          out);
	cr_expect_neq(stat(marker, &st), 0, "the marker stayed");
	free(out);
	free(err);

	/* A first start cut short leaves its marker: the next start loads
	 * again, and finds everything stored already. */
	tu_file_write(marker, "", 0);
	cr_assert_eq(run_script(&out, &err), 0, "%s\n%s", out, err);
	cr_expect(strstr(out, "did not finish; loading it again") != NULL,
	          "%s", out);
	cr_expect(strstr(out, "90 unchanged") != NULL, "%s", out);
	cr_expect_neq(stat(marker, &st), 0, "the marker stayed");
	free(out);
	free(err);

	/* A data directory with data and no marker: nothing to set up. */
	cr_assert_eq(run_script(&out, &err), 0, "%s\n%s", out, err);
	cr_expect(strstr(out, "loading") == NULL, "%s", out);
	free(out);
	free(err);

	unsetenv("ANCHORAGE_SETUP_ONLY");
	unsetenv("ANCHORAGE_DEMO_DATA");
	unsetenv("ANCHORAGE_DATA");
	unsetenv("ANCHORAGE_BIN");
}

/* A listen address someone else has is found before the demo load: the
 * script used to load, print a hint naming that address (which then
 * queried the other server) and only then fail to listen. */
Test(e2e_run, busy_listen_address_refused_before_anything)
{
	const char *tmp = tu_tmpdir();
	char data[TU_PATH_MAX], bin[TU_PATH_MAX], url[64], *out = NULL,
	    *err = NULL;
	struct stat st;
	unsigned port;
	int fd = tu_listen_loopback(&port);

	snprintf(url, sizeof url, "tcp://127.0.0.1:%u", port);
	snprintf(data, sizeof data, "%s/data", tmp);
	snprintf(bin, sizeof bin, "%s", ANC_SERVER_BIN);
	setenv("ANCHORAGE_BIN", dirname(bin), 1);
	setenv("ANCHORAGE_DATA", data, 1);
	setenv("ANCHORAGE_LISTEN", url, 1);
	unsetenv("ANCHORAGE_SETUP_ONLY");
	cr_expect_eq(run_script(&out, &err), 1, "%s\n%s", out, err);
	cr_expect(strstr(err, "is already in use") != NULL &&
	              strstr(err, url) != NULL,
	          "%s", err);
	cr_expect(strstr(out, "loading") == NULL, "%s", out);
	cr_expect_neq(stat(data, &st), 0, "the data directory was made");
	free(out);
	free(err);
	close(fd);
	unsetenv("ANCHORAGE_LISTEN");
	unsetenv("ANCHORAGE_DATA");
	unsetenv("ANCHORAGE_BIN");
}
