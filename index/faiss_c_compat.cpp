/*
 * faiss_c_compat.cpp — the few faiss C API functions Anchorage calls,
 * implemented on top of the C++ libfaiss.a.
 *
 * Design note
 * -----------
 * Debian's libfaiss-dev ships <faiss/c_api/...> headers but no libfaiss_c
 * (DESIGN.md, "faiss C API on Debian"). The C code in index/ is written
 * against the upstream C API only; this unit supplies exactly the functions
 * it uses, with the upstream signatures (taken from the installed headers, so
 * the compiler checks them) and the upstream error convention: 0 on success,
 * -2 for a faiss::FaissException, -4 for another std::exception, -1 for
 * anything else, and the exception kept per thread for
 * faiss_get_last_error(). Unlike upstream's debug build we never print the
 * exception on std::cerr: the caller copies the message into its anc_error,
 * which is where users look.
 *
 * When a real libfaiss_c is installed CMake links it instead and this file
 * is not compiled, so nothing here may be Anchorage-specific.
 *
 * Search parameters (faiss_c_ext.h) are upstream's later C API. faiss
 * 1.7.3's IndexIDMap refuses any SearchParameters ("search params not
 * supported for this index"); later faiss passes them through to the
 * wrapped index and translates the labels, and so does
 * faiss_Index_search_with_params here (an IDSelector through an IDMap is
 * refused, as it would need translating ids the other way). OpenMP is
 * left alone: the caller decides how many threads a search may use.
 *
 * HNSW efSearch (issue 6). faiss 1.7.3's HNSW::search sizes its candidate
 * queue with the index's own hnsw.efSearch and uses the parameter's only
 * in the stopping test, so SearchParametersHNSW::efSearch above the
 * index's value changes nothing (measured: recall and time at ef 128 and
 * 256 equal to ef 64) and below it only partly. Later faiss sizes the
 * queue with the parameter. Setting the shared member per call would race
 * with concurrent searches, so a search whose parameter differs from the
 * index's value runs hnsw_search_ef below: 1.7.3's own algorithm
 * (greedy descent of the upper levels, then the bounded-queue search of
 * level 0) with the queue sized max(efSearch, k), as upstream does now.
 * Equal values, or an index configured off the common path, take faiss's
 * own search unchanged.
 *
 * Distance kernels (issues 5 and 6). Debian compiles libfaiss.a for
 * baseline x86-64, where faiss's float L2 and inner-product loops are
 * scalar (fvec_L2sqr_ref: 67-90% of a query's or an HNSW build's
 * samples); upstream's faiss_avx2 build vectorises them. Every index this
 * unit makes or reads gets, when the CPU has AVX2 and FMA, a SIMD twin of
 * the part that computes distances (simd_swap):
 *  - the flat float storage (HNSW's storage, or the IndexFlat inside an
 *    IDMap) becomes SimdFlat: the same IndexFlat, data and file format
 *    (write_index sees an IndexFlat), whose distance computer and
 *    small-batch search use the kernels;
 *  - HNSW's 8-bit scalar-quantizer storage (hnsw_sq8) becomes SimdSQ8,
 *    with faiss's formula (component i decodes to
 *    vmin[i] + (code[i] + 0.5) / 255 * vdiff[i]), eight components at a
 *    time;
 *  - an IndexIVFFlat (ivf_flat) becomes SimdIVFFlat, whose inverted-list
 *    scanner computes each distance with the kernel.
 * Everything else is faiss's own code: HNSW adds and searches call the
 * storage's distance computer, IVF's loop calls the scanner, so they run
 * unchanged around the faster kernels. Sums are taken in a different
 * order than faiss's loop, so a distance can differ from faiss's in the
 * last bits. ANCHORAGE_SIMD=off in the environment keeps faiss's classes
 * (A/B measurements). This is not Anchorage-specific either: with a real
 * libfaiss_c the kernels are whatever that faiss build has. Not covered,
 * as Anchorage does not use them: a top-level IndexFlat (not wrapped),
 * faiss::clone_index (the copy is of faiss's class again) and merge_from
 * (faiss checks the exact type and refuses a twin next to the original).
 */
#include <faiss/AutoTune.h>
#include <faiss/Index.h>
#include <faiss/IndexIDMap.h>
#include <faiss/impl/FaissException.h>
#include <faiss/IndexFlat.h>
#include <faiss/IndexHNSW.h>
#include <faiss/IndexIVF.h>
#include <faiss/IndexIVFFlat.h>
#include <faiss/IndexScalarQuantizer.h>
#include <faiss/impl/AuxIndexStructures.h>
#include <faiss/impl/DistanceComputer.h>
#include <faiss/impl/HNSW.h>
#include <faiss/utils/Heap.h>
#include <faiss/utils/distances.h>
#include <faiss/impl/IDSelector.h>
#include <faiss/index_factory.h>
#include <faiss/index_io.h>

#include <immintrin.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <memory>
#include <stdexcept>
#include <typeinfo>

#include <faiss/c_api/AutoTune_c.h>
#include <faiss/c_api/Index_c.h>
#include <faiss/c_api/error_c.h>
#include <faiss/c_api/index_factory_c.h>
#include <faiss/c_api/index_io_c.h>
#include <faiss/c_api/IndexFlat_c.h>
#include <faiss/c_api/MetaIndexes_c.h>

#include "faiss_c_ext.h"

/* Upstream's name and type (error_impl.h), so that code mixing this unit
 * with upstream pieces keeps one error slot per thread. */
thread_local std::exception_ptr faiss_last_exception;

#define ANC_FAISS_CATCH                                                       \
	catch (faiss::FaissException & e) {                                   \
		faiss_last_exception = std::current_exception();              \
		return -2;                                                    \
	}                                                                     \
	catch (std::exception & e) {                                          \
		faiss_last_exception = std::current_exception();              \
		return -4;                                                    \
	}                                                                     \
	catch (...) {                                                         \
		faiss_last_exception = std::make_exception_ptr(                \
		    std::runtime_error("Unknown error"));                     \
		return -1;                                                    \
	}                                                                     \
	return 0;

static faiss::Index *
idx_of(FaissIndex *p)
{
	return reinterpret_cast<faiss::Index *>(p);
}

static const faiss::Index *
cidx_of(const FaissIndex *p)
{
	return reinterpret_cast<const faiss::Index *>(p);
}

/* ---- SIMD flat storage (design note) ---------------------------------- */

namespace {

using dist_fn = float (*)(const float *, const float *, size_t);

__attribute__((target("avx2,fma"))) float
hsum256(__m256 a)
{
	__m128 s = _mm_add_ps(_mm256_castps256_ps128(a),
	                      _mm256_extractf128_ps(a, 1));
	s = _mm_add_ps(s, _mm_movehl_ps(s, s));
	s = _mm_add_ss(s, _mm_movehdup_ps(s));
	return _mm_cvtss_f32(s);
}

__attribute__((target("avx2,fma"))) float
l2_avx2(const float *x, const float *y, size_t d)
{
	__m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps();
	size_t i = 0;
	for (; i + 16 <= d; i += 16) {
		__m256 t0 = _mm256_sub_ps(_mm256_loadu_ps(x + i),
		                          _mm256_loadu_ps(y + i));
		__m256 t1 = _mm256_sub_ps(_mm256_loadu_ps(x + i + 8),
		                          _mm256_loadu_ps(y + i + 8));
		a0 = _mm256_fmadd_ps(t0, t0, a0);
		a1 = _mm256_fmadd_ps(t1, t1, a1);
	}
	if (i + 8 <= d) {
		__m256 t0 = _mm256_sub_ps(_mm256_loadu_ps(x + i),
		                          _mm256_loadu_ps(y + i));
		a0 = _mm256_fmadd_ps(t0, t0, a0);
		i += 8;
	}
	float r = hsum256(_mm256_add_ps(a0, a1));
	for (; i < d; i++) {
		float t = x[i] - y[i];
		r += t * t;
	}
	return r;
}

__attribute__((target("avx2,fma"))) float
ip_avx2(const float *x, const float *y, size_t d)
{
	__m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps();
	size_t i = 0;
	for (; i + 16 <= d; i += 16) {
		a0 = _mm256_fmadd_ps(_mm256_loadu_ps(x + i),
		                     _mm256_loadu_ps(y + i), a0);
		a1 = _mm256_fmadd_ps(_mm256_loadu_ps(x + i + 8),
		                     _mm256_loadu_ps(y + i + 8), a1);
	}
	if (i + 8 <= d) {
		a0 = _mm256_fmadd_ps(_mm256_loadu_ps(x + i),
		                     _mm256_loadu_ps(y + i), a0);
		i += 8;
	}
	float r = hsum256(_mm256_add_ps(a0, a1));
	for (; i < d; i++)
		r += x[i] * y[i];
	return r;
}

/* The kernel for metric m on this CPU, or nullptr: keep faiss's. */
dist_fn
simd_kernel(faiss::MetricType m)
{
	static const bool on = [] {
		const char *e = getenv("ANCHORAGE_SIMD");
		__builtin_cpu_init();
		return (e == nullptr || strcmp(e, "off") != 0) &&
		       __builtin_cpu_supports("avx2") &&
		       __builtin_cpu_supports("fma");
	}();
	if (!on)
		return nullptr;
	return m == faiss::METRIC_L2 ? l2_avx2
	       : m == faiss::METRIC_INNER_PRODUCT ? ip_avx2
	                                          : nullptr;
}

/* A twin made with its original's constructor arguments takes over the
 * rest of its state: the codes (from is left empty) and the flags. */
void
take_codes(faiss::IndexFlatCodes &to, faiss::IndexFlatCodes &from)
{
	to.code_size = from.code_size;
	to.metric_arg = from.metric_arg;
	to.verbose = from.verbose;
	to.is_trained = from.is_trained;
	to.codes.swap(from.codes);
	to.ntotal = from.ntotal;
	from.ntotal = 0;
}

/* What faiss's FlatL2Dis / FlatIPDis compute (squared L2, or the inner
 * product: HNSW negates it itself), with the kernel fn. */
struct SimdFlatDis final : faiss::FlatCodesDistanceComputer {
	const float *xb;
	size_t d;
	dist_fn fn;
	const float *q = nullptr;

	SimdFlatDis(const faiss::IndexFlat &s, dist_fn f)
	        : FlatCodesDistanceComputer(s.codes.data(), s.code_size),
	          xb(s.get_xb()), d((size_t)s.d), fn(f)
	{
	}
	void set_query(const float *x) override { q = x; }
	float distance_to_code(const uint8_t *code) override
	{
		return fn(q, reinterpret_cast<const float *>(code), d);
	}
	float symmetric_dis(idx_t i, idx_t j) override
	{
		return fn(xb + i * d, xb + j * d, d);
	}
};

struct SimdFlat final : faiss::IndexFlat {
	dist_fn fn;

	/* Takes over from's vectors (from is left empty). */
	SimdFlat(faiss::IndexFlat &from, dist_fn f)
	        : faiss::IndexFlat(from.d, from.metric_type), fn(f)
	{
		take_codes(*this, from);
	}

	faiss::FlatCodesDistanceComputer *
	get_FlatCodesDistanceComputer() const override
	{
		return new SimdFlatDis(*this, fn);
	}

	/* A few queries without parameters: the scan faiss does below its
	 * BLAS threshold (exhaustive_L2sqr_seq / exhaustive_inner_product_seq:
	 * a heap per query, a candidate enters only when strictly better),
	 * with the kernel. Anything else is faiss's. */
	void
	search(idx_t n, const float *x, idx_t k, float *D, idx_t *I,
	       const faiss::SearchParameters *params = nullptr) const override
	{
		if (params != nullptr || k <= 0 ||
		    n >= faiss::distance_compute_blas_threshold) {
			faiss::IndexFlat::search(n, x, k, D, I, params);
			return;
		}
		const float *xb = get_xb();
		const size_t dd = (size_t)d;
		const bool l2 = metric_type == faiss::METRIC_L2;
#pragma omp parallel for if (n > 1)
		for (idx_t i = 0; i < n; i++) {
			const float *q = x + i * dd;
			float *Di = D + i * k;
			idx_t *Ii = I + i * k;
			if (l2) {
				faiss::maxheap_heapify(k, Di, Ii);
				for (idx_t j = 0; j < ntotal; j++) {
					float v = fn(q, xb + j * dd, dd);
					if (v < Di[0])
						faiss::maxheap_replace_top(
						    k, Di, Ii, v, j);
				}
				faiss::maxheap_reorder(k, Di, Ii);
			} else {
				faiss::minheap_heapify(k, Di, Ii);
				for (idx_t j = 0; j < ntotal; j++) {
					float v = fn(q, xb + j * dd, dd);
					if (v > Di[0])
						faiss::minheap_replace_top(
						    k, Di, Ii, v, j);
				}
				faiss::minheap_reorder(k, Di, Ii);
			}
		}
	}
};

/* SimdSQ8's distances: the query (or a second code) against a code of
 * faiss's QT_8bit codec, whose trained ranges are vmin[d] then vdiff[d]. */
__attribute__((target("avx2,fma"))) inline __m256
sq8_decode8(const uint8_t *code, const float *vmin, const float *vdiff)
{
	__m128i c8 = _mm_loadl_epi64(reinterpret_cast<const __m128i *>(code));
	__m256 c = _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(c8));
	__m256 u = _mm256_mul_ps(_mm256_add_ps(c, _mm256_set1_ps(0.5f)),
	                         _mm256_set1_ps(1.0f / 255.0f));
	return _mm256_fmadd_ps(u, _mm256_loadu_ps(vdiff), _mm256_loadu_ps(vmin));
}

inline float
sq8_decode1(const uint8_t *code, const float *vmin, const float *vdiff,
            size_t i)
{
	return vmin[i] + (code[i] + 0.5f) / 255.0f * vdiff[i];
}

/* The query q, or when qc is set the code qc, against code: squared L2 or
 * inner product. */
__attribute__((target("avx2,fma"))) float
sq8_dist(const float *q, const uint8_t *qc, const uint8_t *code,
         const float *vmin, const float *vdiff, size_t d, bool l2)
{
	__m256 acc = _mm256_setzero_ps();
	size_t i = 0;
	for (; i + 8 <= d; i += 8) {
		__m256 x = sq8_decode8(code + i, vmin + i, vdiff + i);
		__m256 y = qc != nullptr ? sq8_decode8(qc + i, vmin + i, vdiff + i)
		                         : _mm256_loadu_ps(q + i);
		if (l2) {
			__m256 t = _mm256_sub_ps(y, x);
			acc = _mm256_fmadd_ps(t, t, acc);
		} else {
			acc = _mm256_fmadd_ps(y, x, acc);
		}
	}
	float r = hsum256(acc);
	for (; i < d; i++) {
		float x = sq8_decode1(code, vmin, vdiff, i);
		float y = qc != nullptr ? sq8_decode1(qc, vmin, vdiff, i) : q[i];
		r += l2 ? (y - x) * (y - x) : y * x;
	}
	return r;
}

struct SimdSQ8Dis final : faiss::FlatCodesDistanceComputer {
	const float *vmin, *vdiff;
	size_t d;
	bool l2;
	const float *q = nullptr;

	SimdSQ8Dis(const faiss::IndexScalarQuantizer &s)
	        : FlatCodesDistanceComputer(s.codes.data(), s.code_size),
	          vmin(s.sq.trained.data()), vdiff(s.sq.trained.data() + s.d),
	          d((size_t)s.d), l2(s.metric_type == faiss::METRIC_L2)
	{
	}
	void set_query(const float *x) override { q = x; }
	float distance_to_code(const uint8_t *code) override
	{
		return sq8_dist(q, nullptr, code, vmin, vdiff, d, l2);
	}
	float symmetric_dis(idx_t i, idx_t j) override
	{
		return sq8_dist(nullptr, codes + i * code_size,
		                codes + j * code_size, vmin, vdiff, d, l2);
	}
};

struct SimdSQ8 final : faiss::IndexScalarQuantizer {
	/* Takes over from's codes (from is left empty). */
	explicit SimdSQ8(faiss::IndexScalarQuantizer &from)
	        : faiss::IndexScalarQuantizer(from.d, from.sq.qtype,
	                                      from.metric_type)
	{
		sq = from.sq;
		take_codes(*this, from);
	}

	/* Ours once trained (faiss trains the storage after the swap when
	 * the index is new), faiss's otherwise. */
	faiss::FlatCodesDistanceComputer *
	get_FlatCodesDistanceComputer() const override
	{
		if (sq.trained.size() == 2 * (size_t)d)
			return new SimdSQ8Dis(*this);
		return faiss::IndexScalarQuantizer::get_FlatCodesDistanceComputer();
	}
};

/* The scan of one inverted list of an IndexIVFFlat (raw vectors as codes):
 * faiss's IVFFlatScanner with the kernel. faiss's default scan_codes keeps
 * the heap (maximum for inner product). */
struct SimdIVFFlatScanner final : faiss::InvertedListScanner {
	size_t d;
	dist_fn fn;
	const float *q = nullptr;

	SimdIVFFlatScanner(size_t dim, dist_fn f, bool ip, bool pairs)
	        : InvertedListScanner(pairs, nullptr), d(dim), fn(f)
	{
		keep_max = ip;
		code_size = dim * sizeof(float);
	}
	void set_query(const float *x) override { q = x; }
	void set_list(idx_t l, float) override { list_no = l; }
	float distance_to_code(const uint8_t *code) const override
	{
		return fn(q, reinterpret_cast<const float *>(code), d);
	}
	void
	scan_codes_range(size_t n, const uint8_t *codes, const idx_t *ids,
	                 float radius,
	                 faiss::RangeQueryResult &res) const override
	{
		for (size_t j = 0; j < n; j++, codes += code_size) {
			float v = distance_to_code(codes);
			if (keep_max ? v > radius : v < radius)
				res.add(v, store_pairs ? faiss::lo_build(list_no, j)
				                       : ids[j]);
		}
	}
};

struct SimdIVFFlat final : faiss::IndexIVFFlat {
	dist_fn fn;

	/* Takes over from's quantizer and lists (from no longer owns
	 * them, and is deleted by the caller). */
	SimdIVFFlat(faiss::IndexIVFFlat &from, dist_fn f)
	        : faiss::IndexIVFFlat(from), fn(f)
	{
		from.own_fields = false;
		from.own_invlists = false;
	}

	faiss::InvertedListScanner *
	get_InvertedListScanner(bool store_pairs,
	                        const faiss::IDSelector *sel) const override
	{
		if (sel != nullptr)
			return faiss::IndexIVFFlat::get_InvertedListScanner(
			    store_pairs, sel);
		return new SimdIVFFlatScanner(
		    (size_t)d, fn, metric_type == faiss::METRIC_INNER_PRODUCT,
		    store_pairs);
	}
};

/* Replaces the owned *slot by its SIMD twin when it is exactly one of
 * faiss's classes covered here (the design note), of a metric with a
 * kernel on this CPU: IndexFlat(L2/IP), IndexIVFFlat, and as HNSW's
 * storage (hnsw_storage) the 8-bit IndexScalarQuantizer. */
void
simd_swap(faiss::Index *&slot, bool hnsw_storage)
{
	faiss::Index *cur = slot, *twin = nullptr;
	dist_fn fn;
	if (cur == nullptr || (fn = simd_kernel(cur->metric_type)) == nullptr)
		return;
	const std::type_info &t = typeid(*cur);
	if (t == typeid(faiss::IndexFlat) || t == typeid(faiss::IndexFlatL2) ||
	    t == typeid(faiss::IndexFlatIP))
		twin = new SimdFlat(*static_cast<faiss::IndexFlat *>(cur), fn);
	else if (t == typeid(faiss::IndexIVFFlat))
		twin = new SimdIVFFlat(*static_cast<faiss::IndexIVFFlat *>(cur),
		                       fn);
	else if (hnsw_storage && t == typeid(faiss::IndexScalarQuantizer) &&
	         static_cast<faiss::IndexScalarQuantizer *>(cur)->sq.qtype ==
	             faiss::ScalarQuantizer::QT_8bit)
		twin = new SimdSQ8(
		    *static_cast<faiss::IndexScalarQuantizer *>(cur));
	if (twin == nullptr)
		return;
	slot = twin;
	delete cur;
}

/* Gives idx's flat float storage the SIMD kernels (design note). Only
 * indexes that own the storage are changed. */
void
simd_storage(faiss::Index *idx)
{
	faiss::Index *inner = idx;
	if (auto *m = dynamic_cast<faiss::IndexIDMap *>(idx)) {
		if (!m->own_fields)
			return;
		simd_swap(m->index, false);
		inner = m->index;
	}
	if (auto *h = dynamic_cast<faiss::IndexHNSW *>(inner))
		if (h->own_fields)
			simd_swap(h->storage, true);
}

} /* namespace */

extern "C" {

const char *
faiss_get_last_error()
{
	if (faiss_last_exception) {
		try {
			std::rethrow_exception(faiss_last_exception);
		} catch (std::exception &e) {
			/* what() lives as long as the stored exception, i.e.
			 * until the next failing call on this thread. */
			return e.what();
		} catch (...) {
			return "Unknown error";
		}
	}
	return nullptr;
}

int
faiss_index_factory(FaissIndex **p_index, int d, const char *description,
                    FaissMetricType metric)
{
	try {
		std::unique_ptr<faiss::Index> idx(faiss::index_factory(
		    d, description, static_cast<faiss::MetricType>(metric)));
		simd_storage(idx.get());
		*p_index = reinterpret_cast<FaissIndex *>(idx.release());
	}
	ANC_FAISS_CATCH
}

void
faiss_Index_free(FaissIndex *obj)
{
	delete idx_of(obj);
}

int
faiss_Index_d(const FaissIndex *obj)
{
	return cidx_of(obj)->d;
}

idx_t
faiss_Index_ntotal(const FaissIndex *obj)
{
	return cidx_of(obj)->ntotal;
}

int
faiss_Index_add_with_ids(FaissIndex *index, idx_t n, const float *x,
                         const idx_t *xids)
{
	try {
		idx_of(index)->add_with_ids(n, x, xids);
	}
	ANC_FAISS_CATCH
}

int
faiss_Index_search(const FaissIndex *index, idx_t n, const float *x, idx_t k,
                   float *distances, idx_t *labels)
{
	try {
		cidx_of(index)->search(n, x, k, distances, labels);
	}
	ANC_FAISS_CATCH
}

int
faiss_write_index(const FaissIndex *idx, FILE *f)
{
	try {
		faiss::write_index(cidx_of(idx), f);
	}
	ANC_FAISS_CATCH
}

int
faiss_write_index_fname(const FaissIndex *idx, const char *fname)
{
	try {
		faiss::write_index(cidx_of(idx), fname);
	}
	ANC_FAISS_CATCH
}

int
faiss_read_index(FILE *f, int io_flags, FaissIndex **p_out)
{
	try {
		std::unique_ptr<faiss::Index> idx(faiss::read_index(f, io_flags));
		simd_storage(idx.get());
		*p_out = reinterpret_cast<FaissIndex *>(idx.release());
	}
	ANC_FAISS_CATCH
}

int
faiss_read_index_fname(const char *fname, int io_flags, FaissIndex **p_out)
{
	try {
		std::unique_ptr<faiss::Index> idx(faiss::read_index(fname, io_flags));
		simd_storage(idx.get());
		*p_out = reinterpret_cast<FaissIndex *>(idx.release());
	}
	ANC_FAISS_CATCH
}

int
faiss_ParameterSpace_new(FaissParameterSpace **space)
{
	try {
		*space = reinterpret_cast<FaissParameterSpace *>(
		    new faiss::ParameterSpace());
	}
	ANC_FAISS_CATCH
}

void
faiss_ParameterSpace_free(FaissParameterSpace *space)
{
	delete reinterpret_cast<faiss::ParameterSpace *>(space);
}

int
faiss_ParameterSpace_set_index_parameter(const FaissParameterSpace *space,
                                         FaissIndex *index, const char *name,
                                         double value)
{
	try {
		reinterpret_cast<const faiss::ParameterSpace *>(space)
		    ->set_index_parameter(idx_of(index), name, value);
	}
	ANC_FAISS_CATCH
}

int
faiss_Index_train(FaissIndex *index, idx_t n, const float *x)
{
	try {
		idx_of(index)->train(n, x);
	}
	ANC_FAISS_CATCH
}

int
faiss_Index_is_trained(const FaissIndex *obj)
{
	return cidx_of(obj)->is_trained;
}

int
faiss_Index_add(FaissIndex *index, idx_t n, const float *x)
{
	try {
		idx_of(index)->add(n, x);
	}
	ANC_FAISS_CATCH
}

int
faiss_Index_reset(FaissIndex *index)
{
	try {
		idx_of(index)->reset();
	}
	ANC_FAISS_CATCH
}

int
faiss_IndexFlat_new_with(FaissIndexFlat **p_index, idx_t d,
                         FaissMetricType metric)
{
	try {
		*p_index = reinterpret_cast<FaissIndexFlat *>(new faiss::IndexFlat(
		    d, static_cast<faiss::MetricType>(metric)));
	}
	ANC_FAISS_CATCH
}

FaissIndexFlat *
faiss_IndexFlat_cast(FaissIndex *index)
{
	return reinterpret_cast<FaissIndexFlat *>(
	    dynamic_cast<faiss::IndexFlat *>(idx_of(index)));
}

FaissIndexIDMap2 *
faiss_IndexIDMap2_cast(FaissIndex *index)
{
	return reinterpret_cast<FaissIndexIDMap2 *>(
	    dynamic_cast<faiss::IndexIDMap2 *>(idx_of(index)));
}

void
faiss_IndexIDMap2_id_map(FaissIndexIDMap2 *index, idx_t **p_id_map,
                         size_t *p_size)
{
	auto *m = reinterpret_cast<faiss::IndexIDMap2 *>(index);
	*p_id_map = m->id_map.data();
	*p_size = m->id_map.size();
}

FaissIndex *
faiss_IndexIDMap2_sub_index(FaissIndexIDMap2 *index)
{
	return reinterpret_cast<FaissIndex *>(
	    reinterpret_cast<faiss::IndexIDMap2 *>(index)->index);
}

/* ---- search parameters (faiss_c_ext.h) ---- */

void
faiss_SearchParameters_free(FaissSearchParameters *obj)
{
	delete reinterpret_cast<faiss::SearchParameters *>(obj);
}

void
faiss_SearchParametersIVF_free(FaissSearchParametersIVF *obj)
{
	delete reinterpret_cast<faiss::SearchParametersIVF *>(obj);
}

void
faiss_SearchParametersHNSW_free(FaissSearchParametersHNSW *obj)
{
	delete reinterpret_cast<faiss::SearchParametersHNSW *>(obj);
}

int
faiss_SearchParameters_new(FaissSearchParameters **p_sp, FaissIDSelector *sel)
{
	try {
		auto *sp = new faiss::SearchParameters;
		sp->sel = reinterpret_cast<faiss::IDSelector *>(sel);
		*p_sp = reinterpret_cast<FaissSearchParameters *>(sp);
	}
	ANC_FAISS_CATCH
}

int
faiss_SearchParametersIVF_new(FaissSearchParametersIVF **p_sp)
{
	try {
		*p_sp = reinterpret_cast<FaissSearchParametersIVF *>(
		    new faiss::SearchParametersIVF);
	}
	ANC_FAISS_CATCH
}

int
faiss_SearchParametersIVF_new_with(FaissSearchParametersIVF **p_sp,
                                   FaissIDSelector *sel, size_t nprobe,
                                   size_t max_codes)
{
	try {
		auto *sp = new faiss::SearchParametersIVF;
		sp->sel = reinterpret_cast<faiss::IDSelector *>(sel);
		sp->nprobe = nprobe;
		sp->max_codes = max_codes;
		*p_sp = reinterpret_cast<FaissSearchParametersIVF *>(sp);
	}
	ANC_FAISS_CATCH
}

int
faiss_SearchParametersHNSW_new(FaissSearchParametersHNSW **p_sp)
{
	try {
		*p_sp = reinterpret_cast<FaissSearchParametersHNSW *>(
		    new faiss::SearchParametersHNSW);
	}
	ANC_FAISS_CATCH
}

int
faiss_SearchParametersHNSW_new_with(FaissSearchParametersHNSW **p_sp,
                                    FaissIDSelector *sel, int efSearch)
{
	try {
		auto *sp = new faiss::SearchParametersHNSW;
		sp->sel = reinterpret_cast<faiss::IDSelector *>(sel);
		sp->efSearch = efSearch;
		*p_sp = reinterpret_cast<FaissSearchParametersHNSW *>(sp);
	}
	ANC_FAISS_CATCH
}


namespace {

/* faiss's storage_distance_computer (IndexHNSW.cpp, not exported): HNSW
 * minimises, so inner-product distances are negated. */
struct NegatedDistance : faiss::DistanceComputer {
	std::unique_ptr<faiss::DistanceComputer> base;
	explicit NegatedDistance(faiss::DistanceComputer *b) : base(b) {}
	void set_query(const float *x) override { base->set_query(x); }
	float operator()(idx_t i) override { return -(*base)(i); }
	float symmetric_dis(idx_t i, idx_t j) override
	{
		return -base->symmetric_dis(i, j);
	}
};

typedef faiss::HNSW::storage_idx_t hnsw_id;

void
hnsw_greedy(const faiss::HNSW &h, faiss::DistanceComputer &qdis, int level,
            hnsw_id &nearest, float &d_nearest)
{
	for (;;) {
		hnsw_id prev = nearest;
		size_t begin, end;
		h.neighbor_range(nearest, level, &begin, &end);
		for (size_t i = begin; i < end; i++) {
			hnsw_id v = h.neighbors[i];
			if (v < 0)
				break;
			float d = qdis(v);
			if (d < d_nearest) {
				nearest = v;
				d_nearest = d;
			}
		}
		if (nearest == prev)
			return;
	}
}

/* One query: I/D are a max-heap of k entries (heapified by the caller). */
void
hnsw_search_one(const faiss::HNSW &h, faiss::DistanceComputer &qdis, int k,
                int ef, bool dis_check, faiss::Index::idx_t *I, float *D,
                faiss::VisitedTable &vt)
{
	if (h.entry_point == -1)
		return;
	hnsw_id nearest = h.entry_point;
	float d_nearest = qdis(nearest);
	for (int level = h.max_level; level >= 1; level--)
		hnsw_greedy(h, qdis, level, nearest, d_nearest);

	faiss::HNSW::MinimaxHeap cand(std::max(ef, k));
	cand.push(nearest, d_nearest);
	int nres = 0;
	faiss::maxheap_push(++nres, D, I, d_nearest,
	                    (faiss::Index::idx_t)nearest);
	vt.set(nearest);
	int nstep = 0;
	while (cand.size() > 0) {
		float d0 = 0;
		int v0 = cand.pop_min(&d0);
		if (dis_check && cand.count_below(d0) >= ef)
			break;
		size_t begin, end;
		h.neighbor_range(v0, 0, &begin, &end);
		for (size_t j = begin; j < end; j++) {
			hnsw_id v1 = h.neighbors[j];
			if (v1 < 0)
				break;
			if (vt.get(v1))
				continue;
			vt.set(v1);
			float d = qdis(v1);
			if (nres < k)
				faiss::maxheap_push(++nres, D, I, d,
				                    (faiss::Index::idx_t)v1);
			else if (d < D[0])
				faiss::maxheap_replace_top(nres, D, I, d,
				                           (faiss::Index::idx_t)v1);
			cand.push(v1, d);
		}
		nstep++;
		if (!dis_check && nstep > ef)
			break;
	}
	vt.advance();
}

/* IndexHNSW::search with the queue sized by sp->efSearch (design note).
 * Returns false when the index is off the path this reproduces (then
 * faiss searches). */
bool
hnsw_search_ef(const faiss::Index *idx, faiss::Index::idx_t n, const float *x,
               faiss::Index::idx_t k, const faiss::SearchParameters *params,
               float *distances, faiss::Index::idx_t *labels)
{
	const auto *hi = dynamic_cast<const faiss::IndexHNSW *>(idx);
	const auto *sp =
	    dynamic_cast<const faiss::SearchParametersHNSW *>(params);
	if (hi == nullptr || sp == nullptr || sp->sel != nullptr ||
	    hi->storage == nullptr || hi->reconstruct_from_neighbors != nullptr ||
	    hi->hnsw.upper_beam != 1 || !hi->hnsw.search_bounded_queue ||
	    sp->efSearch == hi->hnsw.efSearch || k <= 0 || k > INT32_MAX)
		return false;
	const faiss::HNSW &h = hi->hnsw;
	const bool ip = hi->metric_type == faiss::METRIC_INNER_PRODUCT;
	std::exception_ptr failed;
#pragma omp parallel
	{
		try {
			faiss::VisitedTable vt(hi->ntotal);
			std::unique_ptr<faiss::DistanceComputer> dis(
			    ip ? new NegatedDistance(
			             hi->storage->get_distance_computer())
			       : hi->storage->get_distance_computer());
#pragma omp for
			for (faiss::Index::idx_t i = 0; i < n; i++) {
				faiss::Index::idx_t *I = labels + i * k;
				float *D = distances + i * k;
				dis->set_query(x + i * hi->d);
				faiss::maxheap_heapify(k, D, I);
				hnsw_search_one(h, *dis, (int)k, sp->efSearch,
				                sp->check_relative_distance, I, D,
				                vt);
				faiss::maxheap_reorder(k, D, I);
			}
		} catch (...) {
#pragma omp critical(anc_hnsw_search_ef)
			if (!failed)
				failed = std::current_exception();
		}
	}
	if (failed)
		std::rethrow_exception(failed);
	if (ip)
		for (faiss::Index::idx_t i = 0; i < n * k; i++)
			distances[i] = -distances[i];
	return true;
}

} /* namespace */

int
faiss_Index_search_with_params(const FaissIndex *index, idx_t n,
                               const float *x, idx_t k,
                               const FaissSearchParameters *params,
                               float *distances, idx_t *labels)
{
	try {
		const faiss::Index *idx = cidx_of(index);
		const auto *sp =
		    reinterpret_cast<const faiss::SearchParameters *>(params);
		const auto *map = dynamic_cast<const faiss::IndexIDMap *>(idx);
		if (sp == nullptr || map == nullptr) {
			if (!hnsw_search_ef(idx, n, x, k, sp, distances, labels))
				idx->search(n, x, k, distances, labels, sp);
		} else {
			FAISS_THROW_IF_NOT_MSG(sp->sel == nullptr,
			    "IDSelector through IndexIDMap not supported");
			if (!hnsw_search_ef(map->index, n, x, k, sp, distances,
			                    labels))
				map->index->search(n, x, k, distances, labels,
				                   sp);
			const faiss::Index::idx_t *ids = map->id_map.data();
			for (idx_t i = 0; i < n * k; i++)
				if (labels[i] >= 0)
					labels[i] = ids[labels[i]];
		}
	}
	ANC_FAISS_CATCH
}

} /* extern "C" */
