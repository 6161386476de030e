/*
 * cli_assemble.c — `anchorage assemble`: the context assembler
 * (client/anc_assemble.h) on the command line.
 *
 * Design note: the hits come from `anchorage --json query ... --text`
 * output (one JSON object per query, several queries allowed, from a file
 * or stdin); the pinned anchors are those of --pin, then those of the
 * lines' "pinned" (query --pin: as the server read them with the hits, so
 * they are taken as they are), each once; the --pin anchors no line
 * carried are resolved through the server to get their current text and
 * revision, and anc_assemble does the rest. The
 * metric that says how scores compare is read from each line's
 * provenance.metric; lines that disagree are refused, because merging l2
 * distances with similarities would rank garbage, and so are lines of
 * different provenance.contract (two models' similarities are not one
 * scale either). Without it (output of an
 * older CLI) --metric or an info lookup of provenance.contract supplies it.
 * The rendered context is written to stdout byte for byte (fwrite, no
 * trailing newline added), so two runs on the same input can be compared
 * with cmp.
 */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "anc_assemble.h"
#include "cli.h"

int
anc_cli_contract_metric(anc_cli_ctx *ctx, const char *id, anc_metric *out,
                        anc_error *err)
{
	anc_resp *resp = NULL;
	const anc_info *info;
	uint32_t i, j;
	int code;

	if ((code = anc_cli_connect(ctx, err)) ||
	    (code = anc_client_info(ctx->client, &resp, err)))
		return code;
	info = &resp->u.info;
	for (i = 0; i < info->ncollections; i++)
		for (j = 0; j < info->collections[i].ncontracts; j++)
			if (strcmp(info->collections[i].contracts[j].id, id) ==
			    0) {
				*out = info->collections[i].contracts[j]
				           .contract.metric;
				anc_resp_free(resp);
				return ANC_OK;
			}
	anc_resp_free(resp);
	return anc_error_set(err, ANC_ENOCONTRACT,
	    "contract %s: not registered on %s", id, ctx->server);
}

typedef struct hitvec {
	anc_asm_passage *v;
	uint32_t n, cap;
} hitvec;

static void
hitvec_free(hitvec *h)
{
	uint32_t i;

	for (i = 0; i < h->n; i++)
		free((char *)h->v[i].text);
	free(h->v);
	memset(h, 0, sizeof(*h));
}

/* A pinned anchor: from --pin (resolved through the server at the end)
 * or from the "pinned" of a hit line (as the server read it with the
 * hits: the same snapshot, no second request). */
typedef struct {
	anc_anchor_str a;
	int have;      /* status, rev and text known (a line's "pinned") */
	int status;    /* anc_anchor_status */
	uint64_t rev;
	char *text;    /* owned; the text of a live one */
} pinent;

typedef struct {
	pinent *v;
	uint32_t n, cap;
} pinvec;

static void
pinvec_free(pinvec *p)
{
	for (uint32_t i = 0; i < p->n; i++)
		free(p->v[i].text);
	free(p->v);
	memset(p, 0, sizeof *p);
}

/* The entry of anchor a, added at the end when new (*idx: its place). */
static int
pin_add(pinvec *p, const char *a, uint32_t *idx)
{
	for (uint32_t i = 0; i < p->n; i++)
		if (strcmp(p->v[i].a, a) == 0) {
			*idx = i;
			return ANC_OK;
		}
	if (p->n == p->cap) {
		uint32_t nc = p->cap ? p->cap * 2 : 16;
		pinent *v = realloc(p->v, nc * sizeof *v);
		if (v == NULL)
			return ANC_ENOMEM;
		p->v = v;
		p->cap = nc;
	}
	memset(&p->v[p->n], 0, sizeof p->v[p->n]);
	memcpy(p->v[p->n].a, a, sizeof(anc_anchor_str));
	*idx = p->n++;
	return ANC_OK;
}

/* The "pinned" of a `query --pin --json` line: each entry as the server
 * read it. Lines of one query carry the same; two lines that disagree on
 * a pin (queries of different moments) are refused. */
static int
pinned_line(json_t *o, const char *origin, uint64_t lineno, pinvec *pins,
            anc_error *err)
{
	json_t *pa = json_object_get(o, "pinned"), *x;
	size_t i;
	uint8_t raw[ANC_ANCHOR_RAW];
	anc_anchor_str a;

	if (pa == NULL || json_is_null(pa))
		return ANC_OK;
	if (!json_is_array(pa))
		return anc_error_set(err, ANC_EINVAL, "%s:%llu: \"pinned\": "
		    "expected an array (output of anchorage --json query "
		    "--pin)", origin, (unsigned long long)lineno);
	json_array_foreach(pa, i, x) {
		json_t *an = json_object_get(x, "anchor");
		json_t *st = json_object_get(x, "status");
		json_t *rv = json_object_get(x, "revision");
		json_t *tx = json_object_get(x, "text");
		int status = -1;
		uint32_t k;
		if (!json_is_string(an) ||
		    anc_anchor_parse(json_string_value(an), raw, NULL) != ANC_OK)
			return anc_error_set(err, ANC_EINVAL, "%s:%llu: "
			    "pinned[%zu].anchor: expected an anchor (26 "
			    "characters a-z2-7)", origin,
			    (unsigned long long)lineno, i);
		for (int s = ANC_ANCHOR_LIVE; json_is_string(st) &&
		     s <= ANC_ANCHOR_UNKNOWN; s++)
			if (strcmp(json_string_value(st),
			           anc_anchor_status_name(s)) == 0)
				status = s;
		if (status < 0 ||
		    (rv != NULL && !(json_is_integer(rv) &&
		                     json_integer_value(rv) >= 0)) ||
		    (status == ANC_ANCHOR_LIVE && !json_is_string(tx)))
			return anc_error_set(err, ANC_EINVAL, "%s:%llu: "
			    "pinned[%zu]: expected {\"anchor\", \"status\": "
			    "\"live\"|\"deleted\"|\"unknown\", \"revision\", "
			    "\"text\" (live)}, as anchorage --json query --pin "
			    "writes it", origin, (unsigned long long)lineno, i);
		anc_anchor_format(raw, a);
		if (pin_add(pins, a, &k) != ANC_OK)
			return anc_error_set(err, ANC_ENOMEM, "out of memory");
		pinent *e = &pins->v[k];
		uint64_t r = rv != NULL ? (uint64_t)json_integer_value(rv) : 0;
		if (e->have) {
			if (e->status != status || e->rev != r)
				return anc_error_set(err, ANC_EINVAL,
				    "%s:%llu: pinned[%zu]: anchor %s is %s rev "
				    "%llu here and %s rev %llu on an earlier "
				    "line: assemble the lines of one query",
				    origin, (unsigned long long)lineno, i, a,
				    anc_anchor_status_name(status),
				    (unsigned long long)r,
				    anc_anchor_status_name(e->status),
				    (unsigned long long)e->rev);
			continue;
		}
		e->have = 1;
		e->status = status;
		e->rev = r;
		if (status == ANC_ANCHOR_LIVE &&
		    (e->text = strdup(json_string_value(tx))) == NULL)
			return anc_error_set(err, ANC_ENOMEM, "out of memory");
	}
	return ANC_OK;
}

/* One line of `query --json` output: append its hits. *metric is -1 until
 * a line names one; *cid gets the first provenance.contract. */
static int
hits_line(hitvec *h, const char *origin, uint64_t lineno, const char *line,
          size_t len, const char *coll, int *metric, anc_contract_id_str cid,
          pinvec *pins, anc_error *err)
{
	json_error_t je;
	json_t *o, *hits, *hit, *prov, *v;
	uint8_t raw[ANC_ANCHOR_RAW];
	anc_asm_passage *p;
	size_t i;
	int m, code = ANC_OK;

	if ((o = json_loadb(line, len, 0, &je)) == NULL)
		return anc_error_set(err, ANC_EMALFORMED,
		    "%s:%llu: invalid JSON at column %d: %s", origin,
		    (unsigned long long)lineno, je.column, je.text);
	hits = json_object_get(o, "hits");
	prov = json_object_get(o, "provenance");
	if (!json_is_array(hits)) {
		code = anc_error_set(err, ANC_EINVAL,
		    "%s:%llu: \"hits\": expected an array (output of anchorage "
		    "--json query --text)", origin, (unsigned long long)lineno);
		goto leave;
	}
	v = json_object_get(prov, "metric");
	if (v != NULL) {
		if (!json_is_string(v) ||
		    (m = anc_metric_parse(json_string_value(v))) < 0) {
			code = anc_error_set(err, ANC_EINVAL,
			    "%s:%llu: provenance.metric: expected \"l2\", \"ip\" "
			    "or \"cosine\"", origin, (unsigned long long)lineno);
			goto leave;
		}
		if (*metric >= 0 && *metric != m) {
			code = anc_error_set(err, ANC_EINVAL,
			    "%s:%llu: provenance.metric: %s, but earlier lines "
			    "are %s: scores of different metrics cannot be "
			    "ranked together", origin,
			    (unsigned long long)lineno, json_string_value(v),
			    anc_metric_name((anc_metric)*metric));
			goto leave;
		}
		*metric = m;
	}
	/* Hits of another collection are other passages: their anchors
	 * mean nothing next to pins resolved in coll. (Lines written by
	 * hand, without provenance.collection, are taken at their word.) */
	v = json_object_get(prov, "collection");
	if (v != NULL && !json_is_string(v)) {
		code = anc_error_set(err, ANC_EINVAL,
		    "%s:%llu: provenance.collection: expected a string",
		    origin, (unsigned long long)lineno);
		goto leave;
	}
	if (v != NULL && strcmp(json_string_value(v), coll) != 0) {
		code = anc_error_set(err, ANC_EINVAL,
		    "%s:%llu: provenance.collection: '%s', but this is "
		    "assemble %s: hits of another collection are other "
		    "passages", origin, (unsigned long long)lineno,
		    json_string_value(v), coll);
		goto leave;
	}
	if ((code = pinned_line(o, origin, lineno, pins, err)))
		goto leave;
	v = json_object_get(prov, "contract");
	if (json_is_string(v) && json_string_length(v) == ANC_CONTRACT_ID_LEN) {
		/* Scores of two contracts are two embedding models' (or
		 * revisions') similarities: ranking them together would be
		 * the silently wrong answer contracts exist to prevent. */
		if (cid[0] != '\0' && strcmp(cid, json_string_value(v)) != 0) {
			code = anc_error_set(err, ANC_EINVAL,
			    "%s:%llu: provenance.contract: %s, but earlier lines "
			    "are %s: hits of different contracts cannot be "
			    "ranked together (assemble each contract's hits "
			    "apart)", origin, (unsigned long long)lineno,
			    json_string_value(v), cid);
			goto leave;
		}
		if (cid[0] == '\0')
			memcpy(cid, json_string_value(v),
			       ANC_CONTRACT_ID_LEN + 1);
	}
	json_array_foreach(hits, i, hit) {
		json_t *a = json_object_get(hit, "anchor");
		json_t *s = json_object_get(hit, "score");
		json_t *r = json_object_get(hit, "revision");
		json_t *t = json_object_get(hit, "text");

		/* the field named, and what it should be */
		const char *bad =
		    !json_is_string(a) ||
		            anc_anchor_parse(json_string_value(a), raw, err) !=
		                ANC_OK
		        ? "anchor: expected a 26-character anchor"
		    : !(json_is_number(s) || json_is_null(s))
		        ? "score: expected a number"
		    : !json_is_integer(r) || json_integer_value(r) < 0
		        ? "revision: expected a non-negative integer"
		    : t != NULL && !json_is_string(t) && !json_is_null(t)
		        ? "text: expected a string (or null or absent: no "
		          "text)"
		        : NULL;
		if (bad != NULL) {
			code = anc_error_set(err, ANC_EINVAL,
			    "%s:%llu: hits[%zu].%s", origin,
			    (unsigned long long)lineno, i, bad);
			goto leave;
		}
		if (json_is_null(t))
			t = NULL; /* as absent: a hit without text */
		if (h->n == h->cap) {
			uint32_t nc = h->cap ? h->cap * 2 : 64;
			anc_asm_passage *nv = realloc(h->v, nc * sizeof(*nv));

			if (nv == NULL) {
				code = anc_error_set(err, ANC_ENOMEM,
				    "%s: out of memory for %u hits", origin,
				    nc);
				goto leave;
			}
			h->v = nv;
			h->cap = nc;
		}
		p = &h->v[h->n];
		memset(p, 0, sizeof(*p));
		anc_anchor_format(raw, p->anchor);
		p->score = json_is_null(s) ? NAN : (float)json_number_value(s);
		p->revision = (uint64_t)json_integer_value(r);
		if (t != NULL && (p->text = strdup(json_string_value(t))) ==
		    NULL) {
			code = anc_error_set(err, ANC_ENOMEM,
			    "%s: out of memory", origin);
			goto leave;
		}
		h->n++;
	}
leave:
	json_decref(o);
	return code;
}

static json_t *
item_json(const anc_asm_item *it)
{
	json_t *o = json_pack("{s:s,s:I,s:b,s:s,s:I}", "anchor", it->anchor,
	    "revision", (json_int_t)it->revision, "pinned", it->pinned,
	    "reason", anc_asm_reason_name(it->reason), "tokens",
	    (json_int_t)it->tokens);

	if (o != NULL && !it->pinned)
		json_object_set_new(o, "score", isfinite(it->score)
		    ? json_real((double)it->score) : json_null());
	return o;
}

/* The context goes to stdout untouched; what was left out for want of
 * text goes to stderr, so that an empty context is never silent. */
static void
assemble_warn(const anc_asm_result *res, const pinvec *pins)
{
	uint32_t i, notext = 0;

	for (i = 0; i < pins->n; i++)
		if (pins->v[i].status != ANC_ANCHOR_LIVE)
			fprintf(stderr, "anchorage: warning: pin %s: %s, left "
			    "out\n", pins->v[i].a,
			    anc_anchor_status_name(pins->v[i].status));
	for (i = 0; i < res->ndropped; i++) {
		notext += !res->dropped[i].pinned &&
		          res->dropped[i].reason == ANC_ASM_DROP_NOTEXT;
		if (res->dropped[i].pinned &&
		    res->dropped[i].reason == ANC_ASM_DROP_BUDGET)
			fprintf(stderr, "anchorage: warning: --pin %s: does not "
			    "fit in what is left of the budget, left out\n",
			    res->dropped[i].anchor);
	}
	if (notext > 0)
		fprintf(stderr, "anchorage: warning: %u hit%s without text left "
		    "out (query with --text)\n", notext, notext == 1 ? "" : "s");
	if (res->nkept == 0 && res->ndropped > 0)
		fprintf(stderr, "anchorage: warning: the context is empty: "
		    "nothing given fits in --budget or has text\n");
}

static const char assemble_usage[] =
    "usage: anchorage assemble COLLECTION --budget TOKENS [--hits FILE|-]\n"
    "                          [--pin ANCHOR]... [--metric l2|ip|cosine]\n\n"
    "Pick the passages for a prompt: the pinned anchors first (--pin's, "
    "resolved through\nthe server, then those a hit line carries from "
    "`query --pin`, as read with its\nhits; in that order, each once, never "
    "evicted while they fit), "
    "then the hits of\n`anchorage --json query ... --text` (one JSON object "
    "per line, several queries\nallowed; --hits defaults to stdin) by score, "
    "best first (l2: lowest), each anchor\nonce, ties by anchor ID. The "
    "budget counts tokens as ceil(bytes / 4) of each\nrendered block. The "
    "output is the context itself, byte-identical for identical\ninputs, "
    "each passage rendered as\n\n    [ANCHOR rev N]\\n<text>\\n\\n\n\n"
    "With --json: {\"passages\":[...], \"dropped\":[...], \"tokens\", "
    "\"budget\", \"rendered\"}. Hits without text (a query without --text) "
    "and pins\nthat are deleted or unknown are left out, with a warning on "
    "stderr. Hit lines of\ndifferent metrics or contracts are refused (their "
    "scores do not compare).\n";

int
anc_cli_cmd_assemble(anc_cli_ctx *ctx, int argc, char **argv, anc_error *err)
{
	const char *budget = NULL, *hitsf = NULL, *pin = NULL, *mstr = NULL;
	int want_help = 0;
	const anc_cli_optspec specs[] = {
		{"--budget", &budget, NULL}, {"--hits", &hitsf, NULL},
		{"--pin", &pin, NULL}, {"--metric", &mstr, NULL},
		{"--help", NULL, &want_help}, {"-h", NULL, &want_help},
		{NULL, NULL, NULL}};
	const char *pos[1];
	anc_cli_lines *in = NULL;
	pinvec pins = {NULL, 0, 0};
	anc_anchor_str *ask = NULL; /* pins to resolve through the server */
	const char **pv = NULL;    /* --pin values */
	anc_asm_passage *pp = NULL;
	anc_resp *resp = NULL;
	anc_asm_result *res = NULL;
	anc_asm_input ai;
	hitvec h = {NULL, 0, 0};
	anc_contract_id_str cid = "";
	uint8_t raw[ANC_ANCHOR_RAW];
	const char *line, *origin;
	size_t len;
	uint32_t b, nask = 0, npv, i, j, k;
	int npos, helped, metric = -1, m = 0, code;
	json_t *o, *arr;

	memset(&ai, 0, sizeof(ai));
	if ((code = anc_cli_args_help(ctx, argc, argv, specs, pos, 1, &npos,
	         assemble_usage, &helped, err)) || helped)
		goto leave;
	if (npos < 1 || budget == NULL) {
		code = anc_cli_missing(ctx, "assemble",
		    npos < 1 ? "COLLECTION" : "--budget TOKENS", err);
		goto leave;
	}
	if ((code = anc_cli_u32_parse(budget, "--budget", 1, UINT32_MAX - 1,
	         &b, err))) {
		ctx->usage_error = 1;
		goto leave;
	}
	if (mstr != NULL && (m = anc_metric_parse(mstr)) < 0) {
		code = anc_cli_usage(ctx, err, "--metric: expected l2, ip or "
		    "cosine, got '%s'", mstr);
		goto leave;
	}
	if ((code = anc_collection_name_check(pos[0], err))) {
		ctx->usage_error = 1; /* as for query and load */
		goto leave;
	}
	/* Every --pin, in order, each once. */
	if ((pv = calloc((size_t)argc, sizeof *pv)) == NULL) {
		code = anc_error_set(err, ANC_ENOMEM, "out of memory");
		goto leave;
	}
	npv = anc_cli_args_all(argc, argv, specs, "--pin", pv);
	for (i = 0; i < npv; i++) {
		anc_anchor_str as;
		if ((code = anc_anchor_parse(pv[i], raw, err))) {
			anc_error_wrap(err, "--pin");
			ctx->usage_error = 1;
			goto leave;
		}
		anc_anchor_format(raw, as);
		if (pin_add(&pins, as, &k) != ANC_OK) {
			code = anc_error_set(err, ANC_ENOMEM, "out of memory");
			goto leave;
		}
	}
	origin = hitsf == NULL || strcmp(hitsf, "-") == 0 ? "stdin" : hitsf;
	if ((code = anc_cli_lines_open(hitsf ? hitsf : "-", &in, err)))
		goto leave;
	for (;;) {
		if ((code = anc_cli_lines_next(in, &line, &len, err)))
			goto leave;
		if (line == NULL)
			break;
		if (strspn(line, " \t") == len)
			continue;
		if ((code = hits_line(&h, origin, anc_cli_lines_lineno(in),
		         line, len, pos[0], &metric, cid, &pins, err)))
			goto leave;
	}
	if (mstr != NULL) {
		if (metric >= 0 && metric != m) {
			code = anc_error_set(err, ANC_EINVAL,
			    "--metric %s, but the hits say %s", mstr,
			    anc_metric_name((anc_metric)metric));
			goto leave;
		}
		metric = m;
	}
	if (metric < 0 && h.n > 0) {
		anc_metric mm;

		if (cid[0] == '\0') {
			code = anc_cli_usage(ctx, err, "assemble: the hits name "
			    "no metric or contract: give --metric");
			goto leave;
		}
		if ((code = anc_cli_contract_metric(ctx, cid, &mm, err)))
			goto leave;
		metric = (int)mm;
	}
	if ((pp = calloc(pins.n ? pins.n : 1, sizeof(*pp))) == NULL ||
	    (ask = calloc(pins.n ? pins.n : 1, sizeof(*ask))) == NULL) {
		code = anc_error_set(err, ANC_ENOMEM, "out of memory");
		goto leave;
	}
	/* The pins no hit line carried (--pin's): resolved now. */
	for (i = 0; i < pins.n; i++)
		if (!pins.v[i].have)
			memcpy(ask[nask++], pins.v[i].a, sizeof(anc_anchor_str));
	if (nask > 0) {
		anc_limits lim;

		anc_limits_default(&lim);
		if (nask > lim.max_anchors) {
			code = anc_error_set(err, ANC_ETOOBIG,
			    "--pin: %u anchors, at most %u", nask,
			    lim.max_anchors);
			goto leave;
		}
		if ((code = anc_cli_connect(ctx, err)) ||
		    (code = anc_client_resolve(ctx->client, pos[0], ask, nask,
		         &resp, err)))
			goto leave;
		if (resp->u.resolve.n != nask) {
			code = anc_error_set(err, ANC_EMALFORMED,
			    "resolve reply: expected %u results, got %u", nask,
			    resp->u.resolve.n);
			goto leave;
		}
		for (i = 0, j = 0; i < pins.n; i++) {
			const anc_resolved *r;
			if (pins.v[i].have)
				continue;
			r = &resp->u.resolve.results[j++];
			pins.v[i].status = r->status;
			pins.v[i].rev = r->revision;
			if (r->status == ANC_ANCHOR_LIVE && r->text != NULL &&
			    (pins.v[i].text = strdup(r->text)) == NULL) {
				code = anc_error_set(err, ANC_ENOMEM,
				    "out of memory");
				goto leave;
			}
		}
	}
	for (i = 0; i < pins.n; i++) {
		memcpy(pp[i].anchor, pins.v[i].a, sizeof(pp[i].anchor));
		pp[i].revision = pins.v[i].rev;
		pp[i].text = pins.v[i].status == ANC_ANCHOR_LIVE ? pins.v[i].text
		                                                 : NULL;
	}
	ai.pins = pp;
	ai.npins = pins.n;
	ai.hits = h.v;
	ai.nhits = h.n;
	ai.metric = metric >= 0 ? (anc_metric)metric : ANC_METRIC_L2;
	ai.budget = b;
	if ((code = anc_assemble(&ai, &res, err)))
		goto leave;
	if (ctx->json) {
		/* no hits: no metric was needed nor known */
		o = json_pack("{s:I,s:I,s:o}", "budget", (json_int_t)b, "tokens",
		    (json_int_t)res->tokens, "metric", metric >= 0
		    ? json_string(anc_metric_name(ai.metric)) : json_null());
		for (j = 0; o != NULL && j < 2; j++) {
			const anc_asm_item *v = j ? res->dropped : res->kept;
			uint32_t n = j ? res->ndropped : res->nkept;

			arr = json_array();
			for (i = 0; arr != NULL && i < n; i++)
				if (json_array_append_new(arr, item_json(&v[i])))
					json_decref(arr), arr = NULL;
			if (arr == NULL || json_object_set_new(o,
			        j ? "dropped" : "passages", arr) != 0)
				json_decref(o), o = NULL;
		}
		if (o != NULL) {
			json_t *rs = json_stringn(res->rendered,
			    res->rendered_len);

			if (rs == NULL) /* invalid UTF-8 in a passage */
				rs = anc_cli_json_str(res->rendered);
			if (json_object_set_new(o, "rendered", rs) != 0)
				json_decref(o), o = NULL;
		}
		code = anc_cli_json_emit(stdout, o, err);
	} else if (res->rendered_len > 0 &&
	           fwrite(res->rendered, 1, res->rendered_len, stdout) !=
	               res->rendered_len) {
		code = anc_error_set(err, ANC_EIO, "cannot write to stdout: %s",
		    strerror(errno));
	}
	if (code == ANC_OK) /* stderr, so with --json as well */
		assemble_warn(res, &pins);
leave:
	anc_asm_result_free(res);
	anc_resp_free(resp);
	anc_cli_lines_close(in);
	hitvec_free(&h);
	free(pp);
	free(ask);
	free(pv);
	pinvec_free(&pins);
	return code;
}
