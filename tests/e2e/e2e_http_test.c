/*
 * e2e_http_test.c — the server's HTTP listener against real components:
 *   - /healthz, /readyz, /metrics, /api/v1/drift, the page and a 404, read
 *     with curl;
 *   - a real Prometheus (Debian package `prometheus`, installed by
 *     scripts/install-deps.sh) on 127.0.0.1 scraping /metrics every second:
 *     its query API must return the drift gauges with the right labels;
 *   - headless Chromium (Debian `chromium`) opening the status page: the DOM
 *     must show the verdict "drift" for the drifted contract; a screenshot
 *     is saved in the build directory (e2e_http_drift_page.png).
 * A missing prometheus, chromium or curl fails the test loudly: run
 * scripts/install-deps.sh (as root or with sudo).
 */
#include <criterion/criterion.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "anc_client.h"
#include "cli_vecfile.h"
#include "srv_auth.h"
#include "testutil.h"
#include "tu_corpus.h"

static pid_t prom_pid;

static void
fini(void)
{
	if (prom_pid > 0) {
		kill(prom_pid, SIGKILL);
		waitpid(prom_pid, NULL, 0);
		prom_pid = 0;
	}
	tu_cleanup();
}

TestSuite(e2e_http, .fini = fini, .timeout = 300);

static const char *
need(const char *bin)
{
	static const char *dirs[] = {"/usr/bin", "/usr/local/bin", "/bin"};
	static char path[256];
	for (size_t i = 0; i < sizeof dirs / sizeof *dirs; i++) {
		snprintf(path, sizeof path, "%s/%s", dirs[i], bin);
		if (access(path, X_OK) == 0)
			return path;
	}
	cr_assert_fail("%s is not installed: run scripts/install-deps.sh (it "
	               "installs the Debian packages the tests need)", bin);
	return NULL;
}

/* GET url with curl, with one more header unless header is NULL: returns
 * the HTTP status, body in *body. */
static int
http_get_h(const char *url, const char *header, char **body)
{
	char curl[256];
	snprintf(curl, sizeof curl, "%s", need("curl"));
	const char *argv[] = {curl, "-s", "-o", "-", "-w", "\n%{http_code}",
	                      "--max-time", "20", url,
	                      header != NULL ? "-H" : NULL, header, NULL};
	char *out = NULL;
	int st = tu_run(argv, NULL, &out, NULL, 30);
	cr_assert_eq(st, 0, "curl %s: exit %d", url, st);
	char *nl = strrchr(out, '\n');
	cr_assert_not_null(nl);
	int code = atoi(nl + 1);
	*nl = '\0';
	*body = out;
	return code;
}

static int
http_get(const char *url, char **body)
{
	return http_get_h(url, NULL, body);
}

/* A server with the SOTU corpus, queried with the transport act: drift. */
static void
drifted_server(tu_server *srv, const char *dir, unsigned port,
               anc_contract_id_str id)
{
	char addr[64];
	anc_resp *r = NULL;
	anc_error err;
	float *za = NULL;
	uint32_t n, dim;
	snprintf(addr, sizeof addr, "127.0.0.1:%u", port);
	const char *extra[] = {"--nosync", "--http", addr, "--drift-interval",
	                       "1", "--quiet", NULL};
	tu_server_startv(srv, tu_path(dir, "data"), tu_ipc_url(dir, "s.ipc"),
	                 extra);
	tu_sotu_load_cli(dir, "sotu", id, NULL);
	anc_client *c = tu_client(srv);
	za = tu_fvecs("minilm-za-transport/za_land_transport_act_all-"
	              "MiniLM-L6-v2_384.fvecs", 0, UINT32_MAX, &n, &dim);
	cr_assert_eq(anc_client_query(c, "sotu", NULL, za, n, dim, 1, 0, &r,
	                              &err), ANC_OK, "%s", err.msg);
	anc_resp_free(r);
	cr_assert_eq(anc_client_drift(c, "sotu", NULL, 1, &r, &err), ANC_OK,
	             "%s", err.msg);
	cr_assert_eq(r->u.drift.status, ANC_DRIFT_DRIFT);
	anc_resp_free(r);
	anc_client_close(c);
	free(za);
}

Test(e2e_http, endpoints)
{
	const char *dir = tu_tmpdir();
	tu_server srv;
	anc_contract_id_str id;
	unsigned port = tu_free_port();
	char url[128], *body = NULL;
	drifted_server(&srv, dir, port, id);

	snprintf(url, sizeof url, "http://127.0.0.1:%u/healthz", port);
	cr_expect_eq(http_get(url, &body), 200);
	cr_expect_str_eq(body, "ok\n");
	free(body);
	snprintf(url, sizeof url, "http://127.0.0.1:%u/readyz", port);
	cr_expect_eq(http_get(url, &body), 200);
	free(body);
	/* A contract with canary probes, checked once: its result is a
	 * gauge, so an alert needs no cron job's exit code. */
	{
		char cj[TU_PATH_MAX], kj[TU_PATH_MAX], *o = NULL, *e = NULL;
		uint32_t n, dim;
		float *v = tu_fvecs("sotu-2models/sotu_all-MiniLM-L6-v2_384."
		                    "fvecs", 0, 4, &n, &dim);
		FILE *f;
		snprintf(cj, sizeof cj, "%s", tu_path(dir, "m2.json"));
		tu_file_write(cj, "{\"name\":\"minilm\",\"model\":\"m\","
		              "\"revision\":\"2\",\"dim\":384,\"metric\":"
		              "\"cosine\",\"normalize\":true}\n", (size_t)-1);
		snprintf(kj, sizeof kj, "%s", tu_path(dir, "probes.jsonl"));
		cr_assert_not_null(f = fopen(kj, "w"));
		for (uint32_t i = 0; i < n; i++) {
			fprintf(f, "{\"text\":\"probe %u\",\"vector\":[", i);
			for (uint32_t j = 0; j < dim; j++)
				fprintf(f, "%s%.9g", j ? "," : "",
				        (double)v[i * dim + j]);
			fprintf(f, "]}\n");
		}
		cr_assert_eq(fclose(f), 0);
		free(v);
		tu_cli_set_url(srv.url);
		cr_assert_eq(tu_cli(&o, &e, "contract", "register", "sotu", cj,
		                    "--canaries", kj, NULL), 0, "%s", e);
		free(o);
		free(e);
		cr_assert_eq(tu_cli(&o, &e, "contract", "check", "sotu",
		                    "minilm@2", "--vectors",
		                    tu_data_path("sotu-2models/sotu_all-MiniLM-"
		                                 "L6-v2_384.fvecs"),
		                    "--rows", "0-3", NULL), 0, "%s %s", o, e);
		free(o);
		free(e);
	}
	snprintf(url, sizeof url, "http://127.0.0.1:%u/metrics", port);
	cr_expect_eq(http_get(url, &body), 200);
	{
		const char *pl = strstr(body, "anchorage_contract_check_pass{"
		                              "collection=\"sotu\",contract=\"");
		cr_assert_not_null(pl, "%s", body);
		const char *nl = strchr(pl, '\n');
		cr_assert(nl != NULL && nl - pl > 2 &&
		              strncmp(nl - 3, "} 1", 3) == 0,
		          "%.*s", (int)(nl ? nl - pl : 80), pl);
	}
	cr_expect(strstr(body, "anchorage_contract_check_timestamp_seconds{")
	              != NULL, "no check timestamp");
	/* the default contract has no probes: no sample for it */
	{
		char nope[128];
		snprintf(nope, sizeof nope, "anchorage_contract_check_pass{"
		         "collection=\"sotu\",contract=\"%s\"}", id);
		cr_expect(strstr(body, nope) == NULL, "%s", body);
	}
	char want[256];
	snprintf(want, sizeof want,
	         "anchorage_drift_status{collection=\"sotu\",contract=\"%s\","
	         "status=\"drift\"} 2", id);
	cr_expect(strstr(body, want) != NULL, "no '%s' in /metrics", want);
	cr_expect(strstr(body, "anchorage_requests_total{op=\"query\"}") != NULL);
	cr_expect(strstr(body, "anchorage_request_duration_seconds_bucket{op="
	                       "\"query\",le=\"+Inf\"}") != NULL);
	snprintf(want, sizeof want,
	         "anchorage_index_vectors{collection=\"sotu\",contract=\"%s\"} 90",
	         id);
	cr_expect(strstr(body, want) != NULL, "no '%s'", want);
	cr_expect(strstr(body, "anchorage_lmdb_bytes ") != NULL);
	cr_expect(strstr(body, "\nanchorage_snapshot_failures_total 0\n") !=
	          NULL);
	cr_expect(strstr(body, "anchorage_drift_mmd{") != NULL);
	/* the 90 passages loaded by the CLI, in at least one group, and the
	 * time the commits took */
	cr_expect(strstr(body, "\nanchorage_write_records_total 90\n") != NULL,
	          "%s", strstr(body, "anchorage_write_records_total"));
	{
		const char *g = strstr(body, "\nanchorage_write_groups_total ");
		const char *c = strstr(body, "anchorage_write_seconds_total{"
		                             "stage=\"commit\"} ");
		const char *x = strstr(body, "anchorage_write_seconds_total{"
		                             "stage=\"index\"} ");
		cr_assert(g != NULL && c != NULL && x != NULL);
		unsigned long long groups = strtoull(g + 30, NULL, 10);
		double cs = strtod(strchr(c, ' ') + 1, NULL);
		double is = strtod(strchr(x, ' ') + 1, NULL);
		cr_expect(groups >= 1 && groups <= 90, "groups %llu", groups);
		cr_expect(cs > 0 && cs < 60 && is >= 0 && is < 60,
		          "commit %f index %f", cs, is);
	}
	free(body);
	snprintf(url, sizeof url, "http://127.0.0.1:%u/api/v1/drift", port);
	cr_expect_eq(http_get(url, &body), 200);
	cr_expect(strstr(body, "\"status\":\"drift\"") != NULL, "%.300s", body);
	cr_expect(strstr(body, "\"history\":[{") != NULL, "%.300s", body);
	free(body);
	/* ?hours= takes a number of hours; anything else is a 400 naming it */
	snprintf(url, sizeof url, "http://127.0.0.1:%u/api/v1/drift?hours=2",
	         port);
	cr_expect_eq(http_get(url, &body), 200);
	free(body);
	const char *badh[] = {"abc", "-1", "0", "1e9", "5x", "0x10", "1e-3"};
	for (int i = 0; i < 7; i++) {
		snprintf(url, sizeof url,
		         "http://127.0.0.1:%u/api/v1/drift?hours=%s", port, badh[i]);
		cr_expect_eq(http_get(url, &body), 400, "hours=%s", badh[i]);
		cr_expect(strstr(body, "hours: expected a number of hours") !=
		          NULL, "%s", body);
		free(body);
	}
	snprintf(url, sizeof url,
	         "http://127.0.0.1:%u/api/v1/drift?hours=1&hours=2", port);
	cr_expect_eq(http_get(url, &body), 400);
	cr_expect(strstr(body, "hours: given twice") != NULL, "%s", body);
	free(body);
	snprintf(url, sizeof url, "http://127.0.0.1:%u/", port);
	cr_expect_eq(http_get(url, &body), 200);
	cr_expect(strstr(body, "<canvas") != NULL || strstr(body, "app.js"));
	free(body);
	snprintf(url, sizeof url, "http://127.0.0.1:%u/nothing-here", port);
	cr_expect_eq(http_get(url, &body), 404);
	free(body);
	/* Retired, the drifted contract leaves the drift gauges at once
	 * (an alert on anchorage_drift_status == 2 would fire forever). */
	{
		char *o = NULL, *e = NULL;
		cr_assert_eq(tu_cli(&o, &e, "contract", "promote", "sotu",
		                    "minilm@2", "--force", NULL), 0, "%s", e);
		free(o);
		free(e);
		cr_assert_eq(tu_cli(&o, &e, "contract", "retire", "sotu", id,
		                    NULL), 0, "%s", e);
		free(o);
		free(e);
		snprintf(url, sizeof url, "http://127.0.0.1:%u/metrics", port);
		cr_expect_eq(http_get(url, &body), 200);
		cr_assert(strstr(body, "anchorage_index_vectors{") != NULL);
		for (const char *l = body; *l != '\0';) {
			const char *nl = strchr(l, '\n');
			size_t len = nl ? (size_t)(nl - l) : strlen(l);
			char line[512];
			snprintf(line, sizeof line, "%.*s", (int)len, l);
			cr_expect(strncmp(line, "anchorage_drift_", 16) != 0 ||
			              strstr(line, id) == NULL,
			          "retired contract in /metrics: %s", line);
			l += len + (nl != NULL);
		}
		free(body);
	}
	tu_server_stop(&srv);

	/* a bad --http is refused at start, naming the option */
	const char *argv[] = {tu_server_bin(), "--data", tu_path(dir, "d2"),
	                      "--listen", tu_ipc_url(dir, "t.ipc"), "--http",
	                      "not-an-address", NULL};
	char *err = NULL;
	int st = tu_run(argv, NULL, NULL, &err, 30);
	cr_expect_neq(st, 0);
	cr_expect(strstr(err, "--http") != NULL, "%s", err);
	free(err);
	/* a port out of range: the range is named (nng said "Address
	 * invalid") */
	argv[6] = "127.0.0.1:99999";
	err = NULL;
	st = tu_run(argv, NULL, NULL, &err, 30);
	cr_expect_neq(st, 0);
	cr_expect(strstr(err, "--http: '127.0.0.1:99999': expected HOST:PORT "
	                  "with a port 1..65535") != NULL, "%s", err);
	free(err);
}

Test(e2e_http, prometheus_scrapes_the_drift_gauges)
{
	const char *dir = tu_tmpdir();
	const char *prom = need("prometheus");
	char prom_bin[256], cfg[1024], flag_cfg[1100], flag_web[64],
	    flag_db[1100], url[256];
	tu_server srv;
	anc_contract_id_str id;
	unsigned port = tu_free_port(), pport = tu_free_port();
	snprintf(prom_bin, sizeof prom_bin, "%s", prom);
	drifted_server(&srv, dir, port, id);

	snprintf(cfg, sizeof cfg, "%s", tu_path(dir, "prometheus.yml"));
	char yml[512];
	snprintf(yml, sizeof yml,
	         "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
	         "scrape_configs:\n  - job_name: anchorage\n"
	         "    static_configs:\n      - targets: ['127.0.0.1:%u']\n",
	         port);
	tu_file_write(cfg, yml, (size_t)-1);
	snprintf(flag_cfg, sizeof flag_cfg, "--config.file=%s", cfg);
	snprintf(flag_web, sizeof flag_web, "--web.listen-address=127.0.0.1:%u",
	         pport);
	snprintf(flag_db, sizeof flag_db, "--storage.tsdb.path=%s",
	         tu_path(dir, "tsdb"));
	const char *log = tu_path(dir, "prometheus.log");
	prom_pid = fork();
	cr_assert_geq(prom_pid, 0);
	if (prom_pid == 0) {
		FILE *f = freopen(log, "w", stderr);
		(void)f;
		execl(prom_bin, prom_bin, flag_cfg, flag_web, flag_db,
		      "--web.enable-lifecycle", (char *)NULL);
		_exit(127);
	}
	snprintf(url, sizeof url,
	         "http://127.0.0.1:%u/api/v1/query?query=anchorage_drift_status",
	         pport);
	char *body = NULL, want_c[64];
	int found = 0;
	snprintf(want_c, sizeof want_c, "\"contract\":\"%s\"", id);
	double t0 = tu_now();
	while (!found && tu_now() - t0 < 90) {
		usleep(500 * 1000);
		int st = waitpid(prom_pid, NULL, WNOHANG);
		if (st == prom_pid) {
			prom_pid = 0;
			char *l = tu_file_read(log, NULL);
			cr_assert_fail("prometheus exited: %s", l ? l : "");
		}
		char curl[256];
		snprintf(curl, sizeof curl, "%s", need("curl"));
		const char *argv[] = {curl, "-s", "--max-time", "5", url, NULL};
		free(body);
		body = NULL;
		if (tu_run(argv, NULL, &body, NULL, 10) != 0 || body == NULL)
			continue;
		found = strstr(body, "\"collection\":\"sotu\"") != NULL &&
		        strstr(body, want_c) != NULL &&
		        strstr(body, "\"status\":\"drift\"") != NULL &&
		        strstr(body, "\"job\":\"anchorage\"") != NULL;
	}
	cr_log_info("prometheus answered after %.1f s: %.400s", tu_now() - t0,
	            body ? body : "");
	cr_expect(found, "drift gauges not in Prometheus after 90 s: %.500s",
	          body ? body : "(no answer)");
	cr_expect(strstr(body, "\"2\"]") != NULL, "status value 2: %.300s", body);
	free(body);
	/* a statistic too, by name */
	snprintf(url, sizeof url,
	         "http://127.0.0.1:%u/api/v1/query?query="
	         "anchorage_drift_classifier_auc",
	         pport);
	char curl[256];
	snprintf(curl, sizeof curl, "%s", need("curl"));
	const char *argv[] = {curl, "-s", "--max-time", "5", url, NULL};
	body = NULL;
	cr_expect_eq(tu_run(argv, NULL, &body, NULL, 10), 0);
	cr_expect(body != NULL && strstr(body, want_c) != NULL, "%s",
	          body ? body : "");
	free(body);
	kill(prom_pid, SIGTERM);
	waitpid(prom_pid, NULL, 0);
	prom_pid = 0;
	tu_server_stop(&srv);
}

Test(e2e_http, chromium_shows_the_verdict)
{
	const char *dir = tu_tmpdir();
	const char *chrome = need("chromium");
	char bin[256], url[128], profile[1100], shot[1100], flag_shot[1200];
	tu_server srv;
	anc_contract_id_str id;
	unsigned port = tu_free_port();
	snprintf(bin, sizeof bin, "%s", chrome);
	drifted_server(&srv, dir, port, id);
	/* a second report, so the charts have a line */
	sleep(2);
	snprintf(url, sizeof url, "http://127.0.0.1:%u/", port);
	snprintf(profile, sizeof profile, "--user-data-dir=%s",
	         tu_path(dir, "chrome"));
	const char *common[] = {"--headless", "--no-sandbox", "--disable-gpu",
	                        "--disable-quic", "--no-first-run",
	                        "--disable-background-networking",
	                        "--disable-component-update", "--disable-sync",
	                        "--disable-dev-shm-usage"};
	const char *argv[20];
	int k = 0;
	argv[k++] = bin;
	for (size_t i = 0; i < sizeof common / sizeof *common; i++)
		argv[k++] = common[i];
	argv[k++] = profile;
	argv[k++] = "--virtual-time-budget=8000";
	argv[k++] = "--dump-dom";
	argv[k++] = url;
	argv[k] = NULL;
	char *dom = NULL, *err = NULL;
	int st = tu_run(argv, NULL, &dom, &err, 120);
	cr_assert_eq(st, 0, "chromium --dump-dom: exit %d: %.500s", st,
	             err ? err : "");
	char want[128];
	snprintf(want, sizeof want, "id=\"verdict-sotu-%s\"", id);
	cr_expect(strstr(dom, "data-ready=\"1\"") != NULL,
	          "page never loaded its data: %.800s", dom);
	char *v = strstr(dom, want);
	cr_expect_not_null(v, "no verdict element %s in: %.800s", want, dom);
	if (v != NULL) {
		/* the element: <span class="verdict drift" data-status="drift"
		 * id="...">drift</span> */
		char *open = v;
		while (open > dom && *open != '<')
			open--;
		char *close = strstr(v, "</span>");
		cr_assert_not_null(close);
		*close = '\0';
		cr_expect(strstr(open, "data-status=\"drift\"") != NULL, "%s",
		          open);
		cr_expect(strstr(open, ">drift") != NULL, "%s", open);
	}
	cr_expect(strstr(dom, "data-points=\"0\"") == NULL,
	          "charts drew no point");
	free(dom);
	free(err);

	/* the screenshot: a test artifact in the build directory */
	char cwd[900];
	cr_assert_not_null(getcwd(cwd, sizeof cwd));
	snprintf(shot, sizeof shot, "%s/e2e_http_drift_page.png", cwd);
	snprintf(flag_shot, sizeof flag_shot, "--screenshot=%s", shot);
	unlink(shot);
	k = 0;
	argv[k++] = bin;
	for (size_t i = 0; i < sizeof common / sizeof *common; i++)
		argv[k++] = common[i];
	argv[k++] = profile;
	argv[k++] = "--virtual-time-budget=8000";
	argv[k++] = "--window-size=1280,1000";
	argv[k++] = flag_shot;
	argv[k++] = url;
	argv[k] = NULL;
	st = tu_run(argv, NULL, NULL, &err, 120);
	cr_expect_eq(st, 0, "chromium --screenshot: exit %d: %.500s", st,
	             err ? err : "");
	free(err);
	struct stat sb;
	cr_expect_eq(stat(shot, &sb), 0, "no screenshot at %s", shot);
	cr_expect_gt(sb.st_size, 10000, "screenshot is %lld bytes",
	             (long long)sb.st_size);
	cr_log_info("screenshot: %s (%lld bytes)", shot, (long long)sb.st_size);
	tu_server_stop(&srv);
}

/* With API keys configured, what names collections and contracts over HTTP
 * needs a key too (found by a bad-input hunt: /metrics and the drift API
 * answered anyone); health checks and the page itself stay open. Without
 * keys the HTTP listener, like --listen, must be on loopback. */
Test(e2e_http, keys_guard_metrics_and_drift)
{
	const char *dir = tu_tmpdir();
	tu_server srv;
	char conf[TU_PATH_MAX], json[1024], url[128], hdr[128], addr[64];
	char key[64], salt[33], hash[65], *body = NULL, *err = NULL;
	unsigned port = tu_free_port();
	anc_error e;

	cr_assert_eq(anc_auth_keygen(key, salt, hash, &e), ANC_OK, "%s", e.msg);
	snprintf(conf, sizeof conf, "%s", tu_path(dir, "server.json"));
	snprintf(json, sizeof json, "{\"keys\": [{\"id\":\"dash\",\"role\":"
	         "\"read\",\"salt\":\"%s\",\"sha256\":\"%s\"}]}", salt, hash);
	tu_file_write(conf, json, strlen(json));
	snprintf(addr, sizeof addr, "127.0.0.1:%u", port);
	const char *extra[] = {"--config", conf, "--http", addr, "--quiet",
	                       NULL};
	tu_server_startv(&srv, tu_path(dir, "data"), tu_ipc_url(dir, "s.ipc"),
	                 extra);

	const char *guarded[] = {"/metrics", "/api/v1/drift?hours=1"};
	for (size_t i = 0; i < 2; i++) {
		snprintf(url, sizeof url, "http://%s%s", addr, guarded[i]);
		cr_expect_eq(http_get(url, &body), 401, "%s: %s", guarded[i],
		             body);
		cr_expect(strstr(body, "Authorization: Bearer KEY") != NULL,
		          "%s", body);
		free(body);
		cr_expect_eq(http_get_h(url, "Authorization: Bearer anc_nope",
		                        &body), 401, "%s", body);
		cr_expect(strstr(body, "anc_nope") == NULL, "echoes the key");
		free(body);
		snprintf(hdr, sizeof hdr, "Authorization: Bearer %s", key);
		cr_expect_eq(http_get_h(url, hdr, &body), 200, "%s: %s",
		             guarded[i], body);
		free(body);
	}
	const char *open[] = {"/healthz", "/readyz", "/", "/app.js"};
	for (size_t i = 0; i < 4; i++) {
		snprintf(url, sizeof url, "http://%s%s", addr, open[i]);
		cr_expect_eq(http_get(url, &body), 200, "%s", open[i]);
		free(body);
	}
	tu_server_stop(&srv);

	const char *argv[] = {tu_server_bin(), "--data", tu_path(dir, "d2"),
	                      "--listen", tu_ipc_url(dir, "t.ipc"), "--http",
	                      "0.0.0.0:1", NULL};
	cr_expect_eq(tu_run(argv, NULL, NULL, &err, 20), 1);
	cr_expect(strstr(err, "--http 0.0.0.0:1: no API keys are configured")
	          != NULL, "%s", err);
	free(err);
	/* the same from the environment names the variable, not a flag
	 * the user never gave */
	const char *argv2[] = {tu_server_bin(), "--data", tu_path(dir, "d3"),
	                       "--listen", tu_ipc_url(dir, "t.ipc"), NULL};
	setenv("ANCHORAGE_HTTP", "0.0.0.0:1", 1);
	int st = tu_run(argv2, NULL, NULL, &err, 20);
	setenv("ANCHORAGE_HTTP", "off", 1);
	cr_expect_eq(st, 1);
	cr_expect(strstr(err, "ANCHORAGE_HTTP 0.0.0.0:1: no API keys are "
	          "configured") != NULL, "%s", err);
	free(err);
}
