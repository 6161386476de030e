/*
 * anc_assemble.c — the context assembler (anc_assemble.h).
 *
 * Design note: determinism comes from total orders. Hits are first sorted
 * by (anchor, score best-first, revision high-first, text), so the first
 * entry of each anchor group is its best and the result does not depend on
 * the order hits arrived in; the survivors are then sorted by (score
 * best-first, anchor). Both comparators are total, so qsort's instability
 * cannot leak into the output. Everything the result points to is copied
 * into it, so the caller may free the input at once.
 */
#include "anc_assemble.h"
#include "anc_proto.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

size_t
anc_asm_tokens_bytes(const char *text, size_t len, void *arg)
{
	(void)text;
	(void)arg;
	return (len + 3) / 4;
}

const char *
anc_asm_reason_name(int reason)
{
	switch (reason) {
	case ANC_ASM_KEPT: return "kept";
	case ANC_ASM_DROP_BUDGET: return "budget";
	case ANC_ASM_DROP_DUPLICATE: return "duplicate";
	case ANC_ASM_DROP_NOTEXT: return "no_text";
	}
	return "unknown";
}

void
anc_asm_result_free(anc_asm_result *r)
{
	if (r == NULL)
		return;
	free(r->kept);
	free(r->dropped);
	free(r->rendered);
	free(r);
}

int
anc_asm_input_from_query(const struct anc_resp *const *replies, uint32_t n,
                         anc_asm_input *in, anc_error *err)
{
	anc_asm_passage *pins = NULL, *hits = NULL;
	const anc_resp *pr = NULL;
	size_t nh = 0, k = 0;
	int have_metric = 0;
	anc_metric metric = ANC_METRIC_L2;

	if (in == NULL || (replies == NULL && n > 0))
		return anc_error_set(err, ANC_EINVAL, "assemble input: NULL %s",
		    in == NULL ? "input" : "replies");
	for (uint32_t r = 0; r < n; r++) {
		const anc_resp *x = replies[r];

		if (x == NULL || x->op != ANC_OP_QUERY || x->code != 0)
			return anc_error_set(err, ANC_EINVAL, "assemble input: "
			    "replies[%u] is %s, expected a query's answer", r,
			    x == NULL ? "NULL" : x->code != 0 ? "an error" :
			    anc_op_name(x->op));
		if (!x->u.query.prov.has_metric)
			return anc_error_set(err, ANC_EUNSUPPORTED, "assemble "
			    "input: replies[%u] does not say its contract's "
			    "metric (a server before 2026-11-30): set the "
			    "input's metric from the contract instead", r);
		if (have_metric && x->u.query.prov.metric != metric)
			return anc_error_set(err, ANC_EINVAL, "assemble input: "
			    "replies[%u] scores by %s, replies[0] by %s: scores "
			    "of different metrics do not rank together", r,
			    anc_metric_name(x->u.query.prov.metric),
			    anc_metric_name(metric));
		metric = x->u.query.prov.metric;
		have_metric = 1;
		for (uint32_t l = 0; l < x->u.query.nq; l++)
			nh += x->u.query.lists[l].nhits;
		if (pr == NULL && x->u.query.npinned > 0)
			pr = x;
	}
	if (nh > UINT32_MAX)
		return anc_error_set(err, ANC_ETOOBIG, "assemble input: %zu "
		    "hits, at most %u", nh, UINT32_MAX);
	if ((nh > 0 && (hits = calloc(nh, sizeof *hits)) == NULL) ||
	    (pr != NULL && (pins = calloc(pr->u.query.npinned,
	        sizeof *pins)) == NULL)) {
		free(hits);
		return anc_error_set(err, ANC_ENOMEM, "assemble input: out of "
		    "memory for %zu hits", nh);
	}
	for (uint32_t r = 0; r < n; r++)
		for (uint32_t l = 0; l < replies[r]->u.query.nq; l++) {
			const anc_hitlist *hl = &replies[r]->u.query.lists[l];

			for (uint32_t h = 0; h < hl->nhits; h++, k++) {
				memcpy(hits[k].anchor, hl->hits[h].anchor,
				    sizeof hits[k].anchor);
				hits[k].revision = hl->hits[h].revision;
				hits[k].score = hl->hits[h].score;
				hits[k].text = hl->hits[h].text;
			}
		}
	for (uint32_t i = 0; pr != NULL && i < pr->u.query.npinned; i++) {
		const anc_resolved *p = &pr->u.query.pinned[i];

		memcpy(pins[i].anchor, p->anchor, sizeof pins[i].anchor);
		pins[i].revision = p->revision;
		pins[i].text = p->status == ANC_ANCHOR_LIVE ? p->text : NULL;
	}
	in->pins = pins;
	in->npins = pr != NULL ? pr->u.query.npinned : 0;
	in->hits = hits;
	in->nhits = (uint32_t)nh;
	in->metric = metric;
	return ANC_OK;
}

void
anc_asm_input_release(anc_asm_input *in)
{
	if (in == NULL)
		return;
	free((void *)in->pins);
	free((void *)in->hits);
	in->pins = NULL;
	in->hits = NULL;
	in->npins = in->nhits = 0;
}

/* -1 when score a ranks before b, 1 after, 0 equal; NaN ranks last. */
static int
score_cmp(float a, float b, anc_metric m)
{
	int na = isnan(a), nb = isnan(b);

	if (na || nb)
		return na - nb;
	if (a == b)
		return 0;
	if (m == ANC_METRIC_L2)
		return a < b ? -1 : 1;
	return a > b ? -1 : 1;
}

typedef struct asm_ctx {
	const anc_asm_passage *hits;
	anc_metric metric;
} asm_ctx;

/* qsort has no context argument: the comparators read this, set by
 * anc_assemble right before each sort on the calling thread. Thread-local
 * so that concurrent assemblies stay reentrant. */
static _Thread_local asm_ctx sort_ctx;

static int
cmp_text(const char *a, const char *b)
{
	if (a == NULL || b == NULL)
		return (a == NULL) - (b == NULL);
	return strcmp(a, b);
}

static int
hit_group_cmp(const void *pa, const void *pb)
{
	const anc_asm_passage *a = &sort_ctx.hits[*(const uint32_t *)pa];
	const anc_asm_passage *b = &sort_ctx.hits[*(const uint32_t *)pb];
	int c;

	if ((c = strcmp(a->anchor, b->anchor)) != 0)
		return c;
	if ((c = score_cmp(a->score, b->score, sort_ctx.metric)) != 0)
		return c;
	if (a->revision != b->revision)
		return a->revision > b->revision ? -1 : 1;
	if ((c = cmp_text(a->text, b->text)) != 0)
		return c;
	/* 0.0 and -0.0 compare equal; which one is kept must not depend on
	 * the input's order (the JSON result shows it): +0 first */
	return (signbit(a->score) != 0) - (signbit(b->score) != 0);
}

static int
hit_rank_cmp(const void *pa, const void *pb)
{
	const anc_asm_passage *a = &sort_ctx.hits[*(const uint32_t *)pa];
	const anc_asm_passage *b = &sort_ctx.hits[*(const uint32_t *)pb];
	int c;

	if ((c = score_cmp(a->score, b->score, sort_ctx.metric)) != 0)
		return c;
	return strcmp(a->anchor, b->anchor); /* unique after dedupe */
}

static int
anchor_cmp(const void *a, const void *b)
{
	return strcmp((const char *)a, (const char *)b);
}

typedef struct out_buf {
	char *data;
	size_t len, cap;
} out_buf;

static int
out_reserve(out_buf *o, size_t more)
{
	size_t ncap;
	char *nd;

	if (o->len + more + 1 <= o->cap)
		return 0;
	ncap = o->cap ? o->cap : 4096;
	while (ncap < o->len + more + 1)
		ncap *= 2;
	if ((nd = realloc(o->data, ncap)) == NULL)
		return -1;
	o->data = nd;
	o->cap = ncap;
	return 0;
}

/* Append the block of p to o (not yet committed: *blen is its length). */
static int
block_render(out_buf *o, const anc_asm_passage *p, size_t *blen)
{
	char hdr[ANC_ANCHOR_LEN + 48];
	size_t hl, tl;

	hl = (size_t)snprintf(hdr, sizeof(hdr), "[%s rev %" PRIu64 "]\n",
	    p->anchor, p->revision);
	tl = strlen(p->text);
	if (out_reserve(o, hl + tl + 2) != 0)
		return ANC_ENOMEM;
	memcpy(o->data + o->len, hdr, hl);
	memcpy(o->data + o->len + hl, p->text, tl);
	memcpy(o->data + o->len + hl + tl, "\n\n", 2);
	*blen = hl + tl + 2;
	o->data[o->len + *blen] = '\0';
	return ANC_OK;
}

static void
item_fill(anc_asm_item *it, const anc_asm_passage *p, int pinned, int reason)
{
	memset(it, 0, sizeof(*it));
	memcpy(it->anchor, p->anchor, sizeof(it->anchor));
	it->revision = p->revision;
	it->score = pinned ? 0.0f : p->score;
	it->pinned = pinned;
	it->reason = reason;
}

static int
check_anchors(const anc_asm_passage *v, uint32_t n, const char *what,
              anc_error *err)
{
	uint8_t raw[ANC_ANCHOR_RAW];
	uint32_t i;
	int code;

	for (i = 0; i < n; i++) {
		if (memchr(v[i].anchor, '\0', sizeof(v[i].anchor)) == NULL)
			return anc_error_set(err, ANC_EINVAL,
			    "%s[%u].anchor: not NUL-terminated", what, i);
		if ((code = anc_anchor_parse(v[i].anchor, raw, err)) != ANC_OK) {
			anc_error_wrap(err, "%s[%u].anchor", what, i);
			return code;
		}
	}
	return ANC_OK;
}

/* Render p and count its tokens (*tok); take it when it fits the budget
 * and may (*fits 1); otherwise o is left unchanged. */
static int
asm_take(const anc_asm_input *in, anc_asm_count_fn count, out_buf *o,
         size_t *used, const anc_asm_passage *p, int pinned, int may,
         anc_asm_item *it, int *fits, size_t *tok_out)
{
	size_t blen, tok;
	int code;

	*fits = 0;
	if ((code = block_render(o, p, &blen)) != ANC_OK)
		return code;
	tok = count(o->data + o->len, blen, in->count_arg);
	*tok_out = tok;
	if (!may || tok > in->budget - *used) {
		o->data[o->len] = '\0';
		return ANC_OK;
	}
	item_fill(it, p, pinned, ANC_ASM_KEPT);
	it->tokens = tok;
	it->offset = o->len;
	it->length = blen;
	o->len += blen;
	*used += tok;
	*fits = 1;
	return ANC_OK;
}

int
anc_assemble(const anc_asm_input *in, anc_asm_result **out, anc_error *err)
{
	anc_asm_result *r = NULL;
	anc_anchor_str *pinset = NULL; /* sorted anchors of the pins */
	uint32_t *idx = NULL;
	uint32_t i, nidx, nuniq, npinset = 0;
	anc_asm_count_fn count;
	out_buf o = {NULL, 0, 0};
	size_t used = 0, total, tok;
	int stopped = 0, fits, code;

	if (out == NULL)
		return anc_error_set(err, ANC_EINVAL, "assemble: NULL out");
	*out = NULL;
	if (in == NULL)
		return anc_error_set(err, ANC_EINVAL, "assemble: NULL input");
	if ((in->pins == NULL && in->npins != 0) ||
	    (in->hits == NULL && in->nhits != 0))
		return anc_error_set(err, ANC_EINVAL,
		    "assemble: %s is NULL with a count of %u",
		    in->pins == NULL && in->npins ? "pins" : "hits",
		    in->pins == NULL && in->npins ? in->npins : in->nhits);
	if (in->metric != ANC_METRIC_L2 && in->metric != ANC_METRIC_IP &&
	    in->metric != ANC_METRIC_COSINE)
		return anc_error_set(err, ANC_EINVAL,
		    "assemble: metric: expected l2, ip or cosine, got %d",
		    (int)in->metric);
	if ((code = check_anchors(in->pins, in->npins, "pins", err)) ||
	    (code = check_anchors(in->hits, in->nhits, "hits", err)))
		return code;
	count = in->count != NULL ? in->count : anc_asm_tokens_bytes;
	total = (size_t)in->npins + in->nhits;
	if ((r = calloc(1, sizeof(*r))) == NULL ||
	    (r->kept = calloc(total ? total : 1, sizeof(*r->kept))) == NULL ||
	    (r->dropped = calloc(total ? total : 1, sizeof(*r->dropped))) ==
	        NULL ||
	    (pinset = calloc(in->npins ? in->npins : 1, sizeof(*pinset))) ==
	        NULL ||
	    (idx = calloc(in->nhits ? in->nhits : 1, sizeof(*idx))) == NULL ||
	    out_reserve(&o, 0) != 0) {
		code = anc_error_set(err, ANC_ENOMEM,
		    "assemble: out of memory for %zu passages", total);
		goto leave;
	}

	/* 1. Pins, in the caller's order; a repeated pin counts once. */
	for (i = 0; i < in->npins; i++) {
		const anc_asm_passage *p = &in->pins[i];
		anc_asm_item *d = &r->dropped[r->ndropped];

		if (npinset > 0 && bsearch(p->anchor, pinset, npinset,
		        sizeof(*pinset), anchor_cmp) != NULL) {
			item_fill(d, p, 1, ANC_ASM_DROP_DUPLICATE);
			r->ndropped++;
			continue;
		}
		/* Insertion keeps the set sorted; pins are few. */
		{
			uint32_t j = npinset;

			while (j > 0 && strcmp(pinset[j - 1], p->anchor) > 0) {
				memcpy(pinset[j], pinset[j - 1],
				    sizeof(*pinset));
				j--;
			}
			memcpy(pinset[j], p->anchor, sizeof(*pinset));
			npinset++;
		}
		if (p->text == NULL) {
			item_fill(d, p, 1, ANC_ASM_DROP_NOTEXT);
			r->ndropped++;
			continue;
		}
		/* Once one does not fit, later pins never overtake it. */
		if ((code = asm_take(in, count, &o, &used, p, 1, !stopped,
		         &r->kept[r->nkept], &fits, &tok)) != ANC_OK)
			goto nomem;
		if (fits) {
			r->nkept++;
			continue;
		}
		stopped = 1;
		item_fill(d, p, 1, ANC_ASM_DROP_BUDGET);
		d->tokens = tok;
		r->ndropped++;
	}

	/* 2. Hits: one per anchor (its best), none that is pinned. */
	for (i = 0; i < in->nhits; i++)
		idx[i] = i;
	sort_ctx.hits = in->hits;
	sort_ctx.metric = in->metric;
	if (in->nhits > 1)
		qsort(idx, in->nhits, sizeof(*idx), hit_group_cmp);
	for (i = 0, nuniq = 0; i < in->nhits; i++) {
		const anc_asm_passage *p = &in->hits[idx[i]];
		int dup = (i > 0 && strcmp(p->anchor,
		               in->hits[idx[i - 1]].anchor) == 0) ||
		    (npinset > 0 && bsearch(p->anchor, pinset, npinset,
		         sizeof(*pinset), anchor_cmp) != NULL);

		if (dup) {
			item_fill(&r->dropped[r->ndropped++], p, 0,
			    ANC_ASM_DROP_DUPLICATE);
			continue;
		}
		idx[nuniq++] = idx[i];
	}
	nidx = nuniq;
	if (nidx > 1)
		qsort(idx, nidx, sizeof(*idx), hit_rank_cmp);

	/* 3. Hits by rank, greedily. */
	for (i = 0; i < nidx; i++) {
		const anc_asm_passage *p = &in->hits[idx[i]];

		if (p->text == NULL) {
			item_fill(&r->dropped[r->ndropped++], p, 0,
			    ANC_ASM_DROP_NOTEXT);
			continue;
		}
		if ((code = asm_take(in, count, &o, &used, p, 0, 1,
		         &r->kept[r->nkept], &fits, &tok)) != ANC_OK)
			goto nomem;
		if (fits) {
			r->nkept++;
		} else {
			item_fill(&r->dropped[r->ndropped], p, 0,
			    ANC_ASM_DROP_BUDGET);
			r->dropped[r->ndropped++].tokens = tok;
		}
	}
	r->tokens = used;
	r->rendered = o.data;
	r->rendered_len = o.len;
	o.data = NULL;
	*out = r;
	r = NULL;
	code = ANC_OK;
	goto leave;
nomem:
	code = anc_error_set(err, ANC_ENOMEM,
	    "assemble: out of memory rendering %zu bytes", o.len);
leave:
	free(o.data);
	free(idx);
	free(pinset);
	anc_asm_result_free(r);
	return code;
}
