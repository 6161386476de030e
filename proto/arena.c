/*
 * arena.c — bump allocator for decoded messages (see arena.h).
 */
#include "arena.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define PA_ALIGN 16
#define PA_FIRST_CHUNK 4096
#define PA_MAX_CHUNK (1u << 20)

typedef struct pa_chunk {
	struct pa_chunk *next;
	size_t size; /* usable bytes after the header */
	size_t used;
	/* keep the payload 16-byte aligned on every ABI */
	_Alignas(PA_ALIGN) unsigned char data[];
} pa_chunk;

struct pa_arena {
	pa_chunk *head;    /* chunk being filled; older chunks follow */
	size_t next_size;  /* size of the next regular chunk */
};

pa_arena *
pa_arena_new(void)
{
	pa_arena *a = calloc(1, sizeof(*a));
	if (a != NULL)
		a->next_size = PA_FIRST_CHUNK;
	return a;
}

void
pa_arena_free(pa_arena *a)
{
	if (a == NULL)
		return;
	pa_chunk *c = a->head;
	while (c != NULL) {
		pa_chunk *next = c->next;
		free(c);
		c = next;
	}
	free(a);
}

static pa_chunk *
chunk_new(size_t size)
{
	if (size > SIZE_MAX - sizeof(pa_chunk))
		return NULL;
	pa_chunk *c = aligned_alloc(PA_ALIGN,
	    (sizeof(pa_chunk) + size + PA_ALIGN - 1) / PA_ALIGN * PA_ALIGN);
	if (c == NULL)
		return NULL;
	c->next = NULL;
	c->size = size;
	c->used = 0;
	return c;
}

void *
pa_alloc(pa_arena *a, size_t size)
{
	if (a == NULL || size > SIZE_MAX - 2 * PA_ALIGN)
		return NULL;
	size_t need = (size + PA_ALIGN - 1) / PA_ALIGN * PA_ALIGN;
	if (need == 0)
		need = PA_ALIGN;
	pa_chunk *c = a->head;
	if (c == NULL || c->size - c->used < need) {
		if (need > a->next_size / 2) {
			/* A big block gets its own chunk, placed behind the head
			 * so the head's free space is not wasted. */
			pa_chunk *big = chunk_new(need);
			if (big == NULL)
				return NULL;
			big->used = need;
			if (c == NULL) {
				a->head = big;
			} else {
				big->next = c->next;
				c->next = big;
			}
			memset(big->data, 0, need);
			return big->data;
		}
		pa_chunk *nc = chunk_new(a->next_size);
		if (nc == NULL)
			return NULL;
		if (a->next_size < PA_MAX_CHUNK)
			a->next_size *= 2;
		nc->next = c;
		a->head = c = nc;
	}
	void *p = c->data + c->used;
	c->used += need;
	memset(p, 0, need);
	return p;
}

void *
pa_calloc(pa_arena *a, size_t n, size_t size)
{
	if (size != 0 && n > SIZE_MAX / size)
		return NULL;
	return pa_alloc(a, n * size);
}

char *
pa_strndup(pa_arena *a, const char *s, size_t n)
{
	if (n == SIZE_MAX)
		return NULL;
	char *d = pa_alloc(a, n + 1);
	if (d == NULL)
		return NULL;
	if (n > 0)
		memcpy(d, s, n);
	d[n] = '\0';
	return d;
}
