/*
 * anc_assemble.h — the context assembler of libanchorage-client: which
 * passages go into a prompt, in which order, rendered to which bytes.
 *
 * Why it exists
 * -------------
 * A generation service keeps a prompt prefix (and its KV cache) alive
 * across calls. The cache stays valid only if the context it was built from
 * comes back byte for byte. So the assembler is a pure function of its
 * input: same pins, same hits, same budget, same token counter => the same
 * passages in the same order and the same rendered bytes. Nothing depends
 * on the order in which hits arrive, on hash-table iteration or on time.
 *
 * Policy (metadata-aware eviction)
 * --------------------------------
 * "Metadata-aware" in the sense of issue 5: what survives is decided by
 * structured signals about a passage (its anchor ID pinned by the caller,
 * its anchor and revision, the retrieval score), never by recency or by
 * the order of arrival. A passage's own metadata map (query "meta") is
 * not read: ranking by arbitrary caller fields would make the output
 * depend on conventions the assembler cannot know; a caller that wants a
 * passage kept for its metadata pins it. Passages named by structured
 * signals win over the rest:
 *   1. Pinned anchors (the caller's working set, e.g. citations already
 *      shown to the user) come first, in the caller's order, each once.
 *      They are never evicted while they fit. When the pins alone exceed
 *      the budget, pins are kept in the caller's order until the first one
 *      that does not fit; that pin and every later one are dropped
 *      (reason ANC_ASM_DROP_BUDGET), so a pin never overtakes an earlier
 *      one. A pin without text (deleted or unknown anchor) is dropped with
 *      ANC_ASM_DROP_NOTEXT.
 *   2. Then the hits of one or more queries, merged: the same anchor
 *      appears once (its best score wins; on equal scores the higher
 *      revision), and an anchor that is also pinned appears only as the pin
 *      (both are counted as ANC_ASM_DROP_DUPLICATE). Hits are ordered by
 *      score, best first, according to the metric: for ANC_METRIC_L2 the
 *      score is a distance and LOWER is better; for ip and cosine HIGHER is
 *      better. NaN scores rank last. Equal scores are ordered by anchor ID
 *      (byte order of the printed anchor). Hits are taken greedily in that
 *      order; a hit too big for what is left is dropped (ANC_ASM_DROP_BUDGET)
 *      and smaller later hits may still be taken.
 *
 * Rendering and tokens
 * --------------------
 * Each selected passage is rendered as the block
 *
 *     "[" anchor " rev " revision "]\n" text "\n\n"
 *
 * (revision in decimal), blocks concatenated in the order above, nothing
 * before or after. The token cost of a passage is the counter applied to
 * its whole block, so the budget bounds what actually goes into the prompt;
 * the total is the sum over blocks (a real tokenizer may merge tokens across
 * block boundaries; blocks end in "\n\n", where BPE tokenizers split).
 * The default counter, anc_asm_tokens_bytes, is ceil(bytes / 4): about
 * right for English with GPT-style BPE tokenizers and never zero for a
 * non-empty block; pass your tokenizer for an exact count.
 *
 * Ownership: texts in the input are borrowed for the duration of
 * anc_assemble; the result owns copies of everything it points to and is
 * released with anc_asm_result_free. Reentrant; no global state.
 */
#ifndef ANC_ASSEMBLE_H
#define ANC_ASSEMBLE_H

#include <stddef.h>
#include <stdint.h>

#include "anc_error.h"
#include "anc_types.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Token counter: the number of tokens of len bytes at text (not
 * NUL-terminated). arg is the caller's. Must be deterministic. */
typedef size_t (*anc_asm_count_fn)(const char *text, size_t len, void *arg);

/* The default counter: (len + 3) / 4. arg is ignored. */
size_t anc_asm_tokens_bytes(const char *text, size_t len, void *arg);

/* A candidate passage. For pins, score is ignored. text NULL means the
 * passage has no text to show (deleted, unknown, or queried without text). */
typedef struct anc_asm_passage {
	anc_anchor_str anchor;
	uint64_t revision;
	float score;
	const char *text; /* borrowed, NUL-terminated */
} anc_asm_passage;

typedef struct anc_asm_input {
	const anc_asm_passage *pins; /* in the caller's order; may be NULL */
	uint32_t npins;
	const anc_asm_passage *hits; /* any order, several queries merged */
	uint32_t nhits;
	anc_metric metric;           /* how hit scores compare */
	size_t budget;               /* tokens */
	anc_asm_count_fn count;      /* NULL: anc_asm_tokens_bytes */
	void *count_arg;
} anc_asm_input;

typedef enum {
	ANC_ASM_KEPT = 0,
	ANC_ASM_DROP_BUDGET = 1,    /* did not fit in what was left */
	ANC_ASM_DROP_DUPLICATE = 2, /* same anchor already selected/pinned */
	ANC_ASM_DROP_NOTEXT = 3     /* no text to render */
} anc_asm_reason;

typedef struct anc_asm_item {
	anc_anchor_str anchor;
	uint64_t revision;
	float score;   /* hits: the (best) score; pins: 0 */
	int pinned;    /* 1 for a pin */
	int reason;    /* anc_asm_reason */
	size_t tokens; /* cost of the rendered block; for a budget drop what
	                  it would have cost; 0 for duplicates and passages
	                  without text */
	size_t offset; /* kept items: byte offset of the block in rendered */
	size_t length; /* kept items: byte length of the block */
} anc_asm_item;

typedef struct anc_asm_result {
	anc_asm_item *kept;     /* in rendering order */
	uint32_t nkept;
	anc_asm_item *dropped;  /* dropped pins (caller order), duplicate hits
	                           (by anchor), other hits (rank order) */
	uint32_t ndropped;
	size_t tokens;          /* sum of kept[i].tokens, <= budget */
	char *rendered;         /* the prompt context, NUL-terminated */
	size_t rendered_len;
} anc_asm_result;

/* Select and render. *out is NULL on failure. Errors: ANC_EINVAL (NULL
 * input, a NULL array with a non-zero count, an anchor that is not 26
 * characters of the anchor alphabet, an unknown metric), ANC_ENOMEM. */
int anc_assemble(const anc_asm_input *in, anc_asm_result **out,
                 anc_error *err);

void anc_asm_result_free(anc_asm_result *r); /* NULL is fine */

/* Name of a reason: "kept", "budget", "duplicate", "no_text". */
const char *anc_asm_reason_name(int reason);

/* ---- from query replies --------------------------------------------------
 *
 * The passages of query replies (anc_client_query2 with text, and pins
 * for the pinned anchors) as the assembler's input: every hit of every
 * reply's hit lists, and the pinned anchors of the first reply that has
 * any (a live one with its text; a deleted or unknown one without, which
 * the assembler drops as ANC_ASM_DROP_NOTEXT), in the request's order.
 * in->metric comes from the replies' provenance; budget, count and
 * count_arg are left as they were. Texts are borrowed from the replies:
 * keep them until anc_assemble returns, then anc_asm_input_release(in).
 *
 * Errors: ANC_EINVAL (NULL arguments, a reply that is not to a query,
 * replies from contracts of different metrics), ANC_EUNSUPPORTED (a server
 * before 2026-11-30 does not say the metric: set in->metric yourself from
 * the contract, see anc_client_info), ANC_ENOMEM. On error *in holds no
 * arrays. */
struct anc_resp;
int anc_asm_input_from_query(const struct anc_resp *const *replies,
                             uint32_t n, anc_asm_input *in, anc_error *err);
/* Free the arrays anc_asm_input_from_query made (NULL is fine). */
void anc_asm_input_release(anc_asm_input *in);

#ifdef __cplusplus
}
#endif
#endif /* ANC_ASSEMBLE_H */
