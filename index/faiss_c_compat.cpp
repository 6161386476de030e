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
 */
#include <faiss/AutoTune.h>
#include <faiss/Index.h>
#include <faiss/IndexIDMap.h>
#include <faiss/impl/FaissException.h>
#include <faiss/index_factory.h>
#include <faiss/index_io.h>

#include <exception>
#include <stdexcept>

#include <faiss/c_api/AutoTune_c.h>
#include <faiss/c_api/Index_c.h>
#include <faiss/c_api/error_c.h>
#include <faiss/c_api/index_factory_c.h>
#include <faiss/c_api/index_io_c.h>

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
		faiss::Index *idx = faiss::index_factory(
		    d, description, static_cast<faiss::MetricType>(metric));
		*p_index = reinterpret_cast<FaissIndex *>(idx);
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
		faiss::Index *idx = faiss::read_index(f, io_flags);
		*p_out = reinterpret_cast<FaissIndex *>(idx);
	}
	ANC_FAISS_CATCH
}

int
faiss_read_index_fname(const char *fname, int io_flags, FaissIndex **p_out)
{
	try {
		faiss::Index *idx = faiss::read_index(fname, io_flags);
		*p_out = reinterpret_cast<FaissIndex *>(idx);
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

} /* extern "C" */
