/*
 * faiss_c_ext.h — declarations of the upstream faiss C API functions that
 * faiss 1.7.3's installed headers lack (private to index/).
 *
 * Search parameters came to faiss's C API after 1.7.3 (upstream
 * c_api/Index_c.h, c_api/IndexIVF_c.h, c_api/IndexHNSW_c.h). The names,
 * types and signatures below are upstream's, so the code calling them is
 * written against the official API; faiss_c_compat.cpp implements them on
 * Debian. Ownership is upstream's too: a parameter object belongs to its
 * creator, who frees it with faiss_SearchParameters_free (any subtype).
 */
#ifndef ANC_FAISS_C_EXT_H
#define ANC_FAISS_C_EXT_H

#include <stddef.h>

#include <faiss/c_api/Index_c.h>
#include <faiss/c_api/faiss_c.h>
#include <faiss/c_api/impl/AuxIndexStructures_c.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Index_c.h */
FAISS_DECLARE_CLASS(SearchParameters)
FAISS_DECLARE_DESTRUCTOR(SearchParameters)

int faiss_SearchParameters_new(FaissSearchParameters **p_sp,
                               FaissIDSelector *sel);

/* Like faiss_Index_search, with params (NULL: the index's own). The
 * parameter type must match the index (HNSW for the HNSW kinds, IVF for
 * the IVF kinds). */
int faiss_Index_search_with_params(const FaissIndex *index, idx_t n,
                                   const float *x, idx_t k,
                                   const FaissSearchParameters *params,
                                   float *distances, idx_t *labels);

/* IndexIVF_c.h */
FAISS_DECLARE_CLASS_INHERITED(SearchParametersIVF, SearchParameters)
FAISS_DECLARE_DESTRUCTOR(SearchParametersIVF)

int faiss_SearchParametersIVF_new(FaissSearchParametersIVF **p_sp);
int faiss_SearchParametersIVF_new_with(FaissSearchParametersIVF **p_sp,
                                       FaissIDSelector *sel, size_t nprobe,
                                       size_t max_codes);

/* IndexHNSW_c.h */
FAISS_DECLARE_CLASS_INHERITED(SearchParametersHNSW, SearchParameters)
FAISS_DECLARE_DESTRUCTOR(SearchParametersHNSW)

int faiss_SearchParametersHNSW_new(FaissSearchParametersHNSW **p_sp);
int faiss_SearchParametersHNSW_new_with(FaissSearchParametersHNSW **p_sp,
                                        FaissIDSelector *sel, int efSearch);

#ifdef __cplusplus
}
#endif
#endif /* ANC_FAISS_C_EXT_H */
