/*
 * assemble_test.c — the context assembler (client/anc_assemble.h): budget
 * respected, pins first and kept, pins dropped in order when they alone
 * exceed the budget, duplicates removed (best score wins), l2 vs ip
 * ordering, ties by anchor, NaN last, byte-identical output whatever the
 * order of the hits, the documented rendering, a pluggable counter, and
 * the input errors.
 */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "anc_assemble.h"

/* Anchor number i: a valid printed anchor (26 chars of the alphabet, zero
 * trailing bits) that sorts by i. */
static void
mk_anchor(unsigned i, anc_anchor_str out)
{
	uint8_t raw[ANC_ANCHOR_RAW] = {0};

	raw[0] = (uint8_t)(i >> 8);
	raw[1] = (uint8_t)i;
	anc_anchor_format(raw, out);
}

static anc_asm_passage
P(unsigned i, float score, uint64_t rev, const char *text)
{
	anc_asm_passage p;

	memset(&p, 0, sizeof(p));
	mk_anchor(i, p.anchor);
	p.score = score;
	p.revision = rev;
	p.text = text;
	return p;
}

static anc_asm_result *
run(const anc_asm_passage *pins, uint32_t np, const anc_asm_passage *hits,
    uint32_t nh, anc_metric m, size_t budget)
{
	anc_asm_input in;
	anc_asm_result *r = NULL;
	anc_error err = {0};

	memset(&in, 0, sizeof(in));
	in.pins = pins;
	in.npins = np;
	in.hits = hits;
	in.nhits = nh;
	in.metric = m;
	in.budget = budget;
	cr_assert_eq(anc_assemble(&in, &r, &err), 0, "%s", err.msg);
	cr_assert_not_null(r);
	return r;
}

static size_t
block_tokens(unsigned i, uint64_t rev, const char *text)
{
	anc_anchor_str a;
	char buf[4096];

	mk_anchor(i, a);
	return anc_asm_tokens_bytes(buf, (size_t)snprintf(buf, sizeof buf,
	    "[%s rev %llu]\n%s\n\n", a, (unsigned long long)rev, text), NULL);
}

Test(assemble, renders_documented_format)
{
	anc_asm_passage pin = P(1, 0, 3, "pinned text");
	anc_asm_passage hit = P(2, 0.9f, 1, "hit text");
	anc_asm_result *r = run(&pin, 1, &hit, 1, ANC_METRIC_IP, 1000);
	anc_anchor_str a1, a2;
	char want[256];

	mk_anchor(1, a1);
	mk_anchor(2, a2);
	snprintf(want, sizeof want, "[%s rev 3]\npinned text\n\n[%s rev 1]\n"
	         "hit text\n\n", a1, a2);
	cr_assert_str_eq(r->rendered, want);
	cr_assert_eq(r->rendered_len, strlen(want));
	cr_assert_eq(r->nkept, 2);
	cr_assert(r->kept[0].pinned && !r->kept[1].pinned);
	cr_assert_eq(r->kept[1].offset, r->kept[0].length);
	cr_assert_eq(r->tokens, r->kept[0].tokens + r->kept[1].tokens);
	cr_assert_eq(r->kept[0].tokens, (r->kept[0].length + 3) / 4);
	anc_asm_result_free(r);
}

Test(assemble, budget_respected_and_greedy_fill)
{
	/* Three hits; the middle one is too big for what is left but the
	 * last one still fits. */
	static char big[2001];
	memset(big, 'x', 2000);
	anc_asm_passage hits[3] = {P(1, 0.9f, 1, "short one"),
	                           P(2, 0.8f, 1, big),
	                           P(3, 0.7f, 1, "short two")};
	size_t b = block_tokens(1, 1, "short one") +
	           block_tokens(3, 1, "short two");
	anc_asm_result *r = run(NULL, 0, hits, 3, ANC_METRIC_IP, b);
	cr_assert_leq(r->tokens, b);
	cr_assert_eq(r->tokens, b);
	cr_assert_eq(r->nkept, 2);
	cr_assert_str_eq(r->kept[0].anchor, hits[0].anchor);
	cr_assert_str_eq(r->kept[1].anchor, hits[2].anchor);
	cr_assert_eq(r->ndropped, 1);
	cr_assert_str_eq(r->dropped[0].anchor, hits[1].anchor);
	cr_assert_eq(r->dropped[0].reason, ANC_ASM_DROP_BUDGET);
	/* A budget drop says what it would have cost. */
	cr_assert_eq(r->dropped[0].tokens, block_tokens(2, 1, big));
	anc_asm_result_free(r);

	/* Budget 1 token: nothing fits, nothing is rendered. */
	r = run(NULL, 0, hits, 3, ANC_METRIC_IP, 1);
	cr_assert_eq(r->nkept, 0);
	cr_assert_eq(r->tokens, 0);
	cr_assert_eq(r->rendered_len, 0);
	cr_assert_str_eq(r->rendered, "");
	cr_assert_eq(r->ndropped, 3);
	anc_asm_result_free(r);
}

Test(assemble, pins_first_and_never_evicted_while_they_fit)
{
	anc_asm_passage pins[2] = {P(9, 0, 2, "pin nine"), P(5, 0, 1, "pin five")};
	/* Hits with better scores than anything: still after the pins. */
	anc_asm_passage hits[2] = {P(1, 100.f, 1, "hit one"),
	                           P(2, 99.f, 1, "hit two")};
	size_t b = block_tokens(9, 2, "pin nine") + block_tokens(5, 1, "pin five");
	anc_asm_result *r = run(pins, 2, hits, 2, ANC_METRIC_IP, b);
	cr_assert_eq(r->nkept, 2);
	cr_assert_str_eq(r->kept[0].anchor, pins[0].anchor, "caller order");
	cr_assert_str_eq(r->kept[1].anchor, pins[1].anchor);
	cr_assert_eq(r->ndropped, 2, "both hits dropped for the budget");
	for (uint32_t i = 0; i < r->ndropped; i++)
		cr_assert_eq(r->dropped[i].reason, ANC_ASM_DROP_BUDGET);
	anc_asm_result_free(r);
}

Test(assemble, pins_over_budget_kept_in_order_rest_dropped)
{
	anc_asm_passage pins[3] = {P(1, 0, 1, "aaaa aaaa aaaa"),
	                           P(2, 0, 1, "bbbb bbbb bbbb bbbb bbbb bbbb"),
	                           P(3, 0, 1, "c")};
	/* Room for pin 1 and pin 3 but not pin 2: pin 3 must NOT overtake
	 * pin 2. */
	size_t b = block_tokens(1, 1, pins[0].text) +
	           block_tokens(3, 1, pins[2].text);
	anc_asm_result *r = run(pins, 3, NULL, 0, ANC_METRIC_L2, b);
	cr_assert_eq(r->nkept, 1);
	cr_assert_str_eq(r->kept[0].anchor, pins[0].anchor);
	cr_assert_eq(r->ndropped, 2);
	cr_assert_str_eq(r->dropped[0].anchor, pins[1].anchor);
	cr_assert_str_eq(r->dropped[1].anchor, pins[2].anchor);
	cr_assert(r->dropped[0].pinned && r->dropped[1].pinned);
	cr_assert_eq(r->dropped[0].reason, ANC_ASM_DROP_BUDGET);
	cr_assert_eq(r->dropped[1].reason, ANC_ASM_DROP_BUDGET);
	cr_assert_eq(r->dropped[0].tokens, block_tokens(2, 1, pins[1].text));
	cr_assert_eq(r->dropped[1].tokens, block_tokens(3, 1, pins[2].text));
	anc_asm_result_free(r);
}

Test(assemble, pin_without_text_and_repeated_pin)
{
	anc_asm_passage pins[3] = {P(4, 0, 7, NULL), P(6, 0, 1, "six"),
	                           P(6, 0, 1, "six")};
	anc_asm_result *r = run(pins, 3, NULL, 0, ANC_METRIC_IP, 1000);
	cr_assert_eq(r->nkept, 1);
	cr_assert_str_eq(r->kept[0].anchor, pins[1].anchor);
	cr_assert_eq(r->ndropped, 2);
	cr_assert_eq(r->dropped[0].reason, ANC_ASM_DROP_NOTEXT);
	cr_assert_eq(r->dropped[1].reason, ANC_ASM_DROP_DUPLICATE);
	cr_assert_eq(r->dropped[0].tokens, 0);
	cr_assert_eq(r->dropped[1].tokens, 0);
	anc_asm_result_free(r);
}

Test(assemble, dedupe_best_score_wins_and_pins_win_over_hits)
{
	/* Anchor 1 from two queries (ip): 0.5 and 0.9; anchor 2 is pinned
	 * and also a hit. */
	anc_asm_passage pin = P(2, 0, 4, "two, pinned");
	anc_asm_passage hits[4] = {P(1, 0.5f, 3, "one"), P(2, 0.99f, 4, "two"),
	                           P(1, 0.9f, 3, "one"), P(3, 0.7f, 1, "three")};
	anc_asm_result *r = run(&pin, 1, hits, 4, ANC_METRIC_IP, 1000);
	cr_assert_eq(r->nkept, 3);
	cr_assert_str_eq(r->kept[0].anchor, pin.anchor);
	cr_assert(r->kept[0].pinned);
	cr_assert_str_eq(r->kept[1].anchor, hits[0].anchor);
	cr_assert_float_eq(r->kept[1].score, 0.9f, 1e-6, "best score wins");
	cr_assert_str_eq(r->kept[2].anchor, hits[3].anchor);
	cr_assert_eq(r->ndropped, 2);
	for (uint32_t i = 0; i < r->ndropped; i++)
		cr_assert_eq(r->dropped[i].reason, ANC_ASM_DROP_DUPLICATE);
	/* Each anchor appears once in the rendering. */
	const char *first = strstr(r->rendered, hits[0].anchor);
	cr_assert_not_null(first);
	cr_assert_null(strstr(first + 1, hits[0].anchor));
	anc_asm_result_free(r);
}

/* 0.0 and -0.0 are equal scores: which copy is kept (its score shows in
 * the JSON result) does not depend on the order the hits came in. */
Test(assemble, signed_zero_copies_keep_the_same_one)
{
	anc_asm_passage a[2] = {P(1, 0.0f, 1, "one"), P(1, -0.0f, 1, "one")};
	anc_asm_passage b[2] = {a[1], a[0]};
	anc_asm_result *ra = run(NULL, 0, a, 2, ANC_METRIC_IP, 1000);
	anc_asm_result *rb = run(NULL, 0, b, 2, ANC_METRIC_IP, 1000);
	cr_assert_eq(ra->nkept, 1);
	cr_assert_eq(rb->nkept, 1);
	cr_assert_eq(signbit(ra->kept[0].score), 0);
	cr_assert_eq(signbit(rb->kept[0].score), 0);
	cr_assert_eq(signbit(ra->dropped[0].score) != 0, 1);
	cr_assert_eq(signbit(rb->dropped[0].score) != 0, 1);
	anc_asm_result_free(ra);
	anc_asm_result_free(rb);
}

Test(assemble, l2_lower_is_better_ip_higher_is_better)
{
	anc_asm_passage hits[3] = {P(1, 3.0f, 1, "far"), P(2, 0.5f, 1, "near"),
	                           P(3, 1.5f, 1, "mid")};
	anc_asm_result *r = run(NULL, 0, hits, 3, ANC_METRIC_L2, 1000);
	cr_assert_eq(r->nkept, 3);
	cr_assert_str_eq(r->kept[0].anchor, hits[1].anchor);
	cr_assert_str_eq(r->kept[1].anchor, hits[2].anchor);
	cr_assert_str_eq(r->kept[2].anchor, hits[0].anchor);
	anc_asm_result_free(r);

	r = run(NULL, 0, hits, 3, ANC_METRIC_IP, 1000);
	cr_assert_str_eq(r->kept[0].anchor, hits[0].anchor);
	cr_assert_str_eq(r->kept[2].anchor, hits[1].anchor);
	anc_asm_result_free(r);

	/* l2 dedupe: the LOWER distance is the best. */
	anc_asm_passage d[2] = {P(7, 2.0f, 1, "x"), P(7, 0.25f, 1, "x")};
	r = run(NULL, 0, d, 2, ANC_METRIC_L2, 1000);
	cr_assert_eq(r->nkept, 1);
	cr_assert_float_eq(r->kept[0].score, 0.25f, 1e-6);
	anc_asm_result_free(r);
}

Test(assemble, ties_by_anchor_and_nan_last)
{
	anc_asm_passage hits[4] = {P(30, 0.5f, 1, "c"), P(10, 0.5f, 1, "a"),
	                           P(5, NAN, 1, "nan"), P(20, 0.5f, 1, "b")};
	anc_asm_result *r = run(NULL, 0, hits, 4, ANC_METRIC_COSINE, 1000);
	cr_assert_eq(r->nkept, 4);
	cr_assert_str_eq(r->kept[0].anchor, hits[1].anchor);
	cr_assert_str_eq(r->kept[1].anchor, hits[3].anchor);
	cr_assert_str_eq(r->kept[2].anchor, hits[0].anchor);
	cr_assert_str_eq(r->kept[3].anchor, hits[2].anchor, "NaN ranks last");
	anc_asm_result_free(r);
}

Test(assemble, deterministic_whatever_the_hit_order)
{
	enum { N = 40 };
	anc_asm_passage hits[N], shuf[N];
	char texts[N][64];
	anc_asm_passage pins[2] = {P(500, 0, 1, "pin a"), P(17, 0, 2, "pin b")};

	for (unsigned i = 0; i < N; i++) {
		snprintf(texts[i], sizeof texts[i], "passage %u %s", i % 25,
		         i % 3 ? "lorem ipsum" : "dolor");
		/* Duplicated anchors (i % 25), repeated scores. */
		hits[i] = P(i % 25, (float)((i * 7) % 11) / 4.0f, 1, texts[i]);
	}
	anc_asm_result *a = run(pins, 2, hits, N, ANC_METRIC_L2, 120);
	for (int round = 0; round < 5; round++) {
		/* A different permutation each round. */
		for (unsigned i = 0; i < N; i++)
			shuf[i] = hits[(i * 17 + (unsigned)round * 5) % N];
		anc_asm_result *b = run(pins, 2, shuf, N, ANC_METRIC_L2, 120);
		cr_assert_eq(a->rendered_len, b->rendered_len);
		cr_assert_eq(memcmp(a->rendered, b->rendered, a->rendered_len), 0,
		             "round %d: rendering differs", round);
		cr_assert_eq(a->nkept, b->nkept);
		cr_assert_eq(a->ndropped, b->ndropped);
		for (uint32_t i = 0; i < a->nkept; i++)
			cr_assert_str_eq(a->kept[i].anchor, b->kept[i].anchor);
		anc_asm_result_free(b);
	}
	cr_assert_leq(a->tokens, 120);
	anc_asm_result_free(a);
}

static size_t
count_words(const char *text, size_t len, void *arg)
{
	size_t n = 0, i;
	int in = 0;

	(*(int *)arg)++;
	for (i = 0; i < len; i++) {
		int sp = text[i] == ' ' || text[i] == '\n';
		if (!sp && !in)
			n++;
		in = !sp;
	}
	return n;
}

Test(assemble, pluggable_counter)
{
	anc_asm_passage hits[2] = {P(1, 0.9f, 1, "one two three"),
	                           P(2, 0.8f, 1, "four five")};
	anc_asm_input in;
	anc_asm_result *r = NULL;
	anc_error err = {0};
	int calls = 0;

	memset(&in, 0, sizeof in);
	in.hits = hits;
	in.nhits = 2;
	in.metric = ANC_METRIC_IP;
	/* Words: header "[anchor" "rev" "1]" = 3 + text words. */
	in.budget = 6;
	in.count = count_words;
	in.count_arg = &calls;
	cr_assert_eq(anc_assemble(&in, &r, &err), 0, "%s", err.msg);
	cr_assert_eq(r->nkept, 1);
	cr_assert_eq(r->tokens, 6);
	cr_assert_str_eq(r->kept[0].anchor, hits[0].anchor);
	cr_assert_geq(calls, 2, "counter called per block");
	anc_asm_result_free(r);
}

Test(assemble, input_errors)
{
	anc_asm_input in;
	anc_asm_result *r = (anc_asm_result *)1;
	anc_error err = {0};
	anc_asm_passage bad = P(1, 0, 1, "x");

	cr_assert_eq(anc_assemble(NULL, &r, &err), ANC_EINVAL);
	cr_assert_null(r);
	memset(&in, 0, sizeof in);
	in.nhits = 3;
	cr_assert_eq(anc_assemble(&in, &r, &err), ANC_EINVAL);
	cr_assert_not_null(strstr(err.msg, "hits"), "%s", err.msg);
	in.nhits = 0;
	in.metric = (anc_metric)7;
	cr_assert_eq(anc_assemble(&in, &r, &err), ANC_EINVAL);
	cr_assert_not_null(strstr(err.msg, "metric"), "%s", err.msg);
	in.metric = ANC_METRIC_L2;
	strcpy(bad.anchor, "not-an-anchor");
	in.pins = &bad;
	in.npins = 1;
	cr_assert_eq(anc_assemble(&in, &r, &err), ANC_EINVAL);
	cr_assert_not_null(strstr(err.msg, "pins[0].anchor"), "%s", err.msg);
	cr_assert_null(r);
	/* Empty input is fine: empty rendering. */
	in.npins = 0;
	cr_assert_eq(anc_assemble(&in, &r, &err), 0, "%s", err.msg);
	cr_assert_eq(r->rendered_len, 0);
	anc_asm_result_free(r);
	anc_asm_result_free(NULL);
}
