/* libedgeport: run an edgeport bundle (or a bare .onnx) through ONNX Runtime, from C.
 *
 * The same rules as Python's edgeport.Session: every artifact is checked against the manifest's
 * sha256 before it is opened, every path the manifest names must stay inside the bundle, with a
 * public key the manifest must carry its Ed25519 signature, inputs are validated
 * (names, dtypes, ranks, fixed and shared symbolic dims) before ONNX Runtime sees them, and a
 * requested execution provider that cannot be used is an error unless fallback is allowed.
 *
 * Conventions:
 *  - Every function that can fail returns an ep_status; EP_OK is 0. On failure,
 *    ep_last_error_message() returns a message for the calling thread (what went wrong, what was
 *    expected, how to fix it), valid until the thread's next libedgeport call.
 *  - Handles are opaque; every *_release accepts NULL. No C++ exception crosses this boundary.
 *  - ep_session_run may be called from several threads on one session at once.
 */
#ifndef EDGEPORT_EDGEPORT_H
#define EDGEPORT_EDGEPORT_H

#include <stddef.h>
#include <stdint.h>

#if defined(_WIN32)
#define EP_API __declspec(dllexport)
#else
#define EP_API __attribute__((visibility("default")))
#endif

#ifdef __cplusplus
extern "C" {
#endif

typedef enum ep_status {
    EP_OK = 0,
    EP_ERR_INVALID_ARGUMENT = 1, /* NULL handle or pointer, bad option value */
    EP_ERR_NOT_FOUND = 2,        /* missing file or directory, unknown artifact */
    EP_ERR_CORRUPT = 3,          /* unreadable manifest, .npy or model file */
    EP_ERR_INTEGRITY = 4,        /* sha256 mismatch, a path that leaves the bundle */
    EP_ERR_PROVIDER = 5,         /* requested execution provider not usable */
    EP_ERR_INPUT = 6,            /* wrong input name, dtype, rank, shape or size */
    EP_ERR_RUNTIME = 7,          /* ONNX Runtime failed while running */
    EP_ERR_PARITY = 8,           /* outputs outside the manifest's tolerance (verify) */
    EP_ERR_UNSUPPORTED = 9,      /* an artifact format or dtype this build cannot run */
    EP_ERR_INTERNAL = 10         /* a bug: please report it */
} ep_status;

/* Element types; the values are ONNX's TensorProto.DataType. */
typedef enum ep_dtype {
    EP_DTYPE_UNDEFINED = 0,
    EP_DTYPE_FLOAT32 = 1,
    EP_DTYPE_UINT8 = 2,
    EP_DTYPE_INT8 = 3,
    EP_DTYPE_UINT16 = 4,
    EP_DTYPE_INT16 = 5,
    EP_DTYPE_INT32 = 6,
    EP_DTYPE_INT64 = 7,
    EP_DTYPE_BOOL = 9,
    EP_DTYPE_FLOAT16 = 10,
    EP_DTYPE_FLOAT64 = 11,
    EP_DTYPE_UINT32 = 12,
    EP_DTYPE_UINT64 = 13
} ep_dtype;

typedef struct ep_options ep_options;
typedef struct ep_session ep_session;
typedef struct ep_tensor ep_tensor;

/* Description of a model input or output. Pointers stay valid while the session lives.
 * shape[i] is -1 for a symbolic dim, whose label is dim_names[i] (NULL or "" when unnamed). */
typedef struct ep_tensor_info {
    const char* name;
    ep_dtype dtype;
    size_t rank;
    const int64_t* shape;
    const char* const* dim_names;
} ep_tensor_info;

/* One input for ep_session_run. data is read, never written or kept after the call. */
typedef struct ep_input {
    const char* name;
    ep_dtype dtype;
    const int64_t* shape;
    size_t rank;
    const void* data;
    size_t byte_size;
} ep_input;

EP_API const char* ep_version(void);
EP_API const char* ep_status_name(ep_status status);
EP_API const char* ep_last_error_message(void);
EP_API size_t ep_dtype_size(ep_dtype dtype); /* bytes per element; 0 if unknown */
EP_API const char* ep_dtype_name(ep_dtype dtype);

/* Options (all optional): artifact name (default: the manifest's recommended ONNX artifact,
 * else onnx-fp32), provider "cpu" (default) or "cuda", intra-op threads (0 = ONNX Runtime's
 * choice), fallback to the CPU when the provider is unusable (off), thread spinning (on, as in
 * ONNX Runtime), sha256 checks (on), a public key the bundle must be signed with (none).
 * Strings passed to the setters are copied; options may be released once ep_session_open has
 * returned. One options object must not be changed from two threads at once. */
EP_API ep_status ep_options_create(ep_options** out);
EP_API void ep_options_release(ep_options* options);
EP_API ep_status ep_options_set_artifact(ep_options* options, const char* artifact);
EP_API ep_status ep_options_set_provider(ep_options* options, const char* provider);
EP_API ep_status ep_options_set_threads(ep_options* options, int threads);
EP_API ep_status ep_options_set_allow_fallback(ep_options* options, int allow);
EP_API ep_status ep_options_set_spinning(ep_options* options, int spinning);
EP_API ep_status ep_options_set_verify_hashes(ep_options* options, int verify);

/** Only open bundles signed with this key.
 *
 * @param options  the options to change.
 * @param pem_path an Ed25519 public key in PEM SubjectPublicKeyInfo ("-----BEGIN PUBLIC
 *                 KEY-----", as `openssl pkey -pubout` writes it); NULL or "" removes the key.
 * @return EP_ERR_INVALID_ARGUMENT if the file cannot be read or is not an Ed25519 public key.
 *
 * The file is read during this call and the key copied into options; the file is not kept open
 * or read again, and pem_path need not outlive the call. With a key, ep_session_open reads
 * the bundle's manifest.json once, checks manifest.json.sig (the raw 64-byte Ed25519 signature
 * of those exact bytes) and parses the same bytes; it fails with EP_ERR_INTEGRITY when the
 * bundle is not signed or the signature does not verify, refuses a bare .onnx file (which
 * carries no signature), and refuses sha256 checks turned off (the signature covers the files
 * through their sha256). Without a key (the default), signatures are not looked at. */
EP_API ep_status ep_options_set_public_key_file(ep_options* options, const char* pem_path);

/* Open a bundle directory or a bare .onnx file. options may be NULL. */
EP_API ep_status ep_session_open(const char* path, const ep_options* options, ep_session** out);
EP_API void ep_session_release(ep_session* session);

EP_API size_t ep_session_input_count(const ep_session* session);
EP_API size_t ep_session_output_count(const ep_session* session);
EP_API ep_status ep_session_input_info(const ep_session* session, size_t index, ep_tensor_info* out);
EP_API ep_status ep_session_output_info(const ep_session* session, size_t index, ep_tensor_info* out);
/* The artifact name ("model.onnx" for a bare file) and the provider that really runs. */
EP_API const char* ep_session_artifact(const ep_session* session);
EP_API const char* ep_session_provider(const ep_session* session);
/* Runs and failed runs so far (thread-safe counters). */
EP_API uint64_t ep_session_run_count(const ep_session* session);
EP_API uint64_t ep_session_error_count(const ep_session* session);

/* Run with every model input given exactly once. On success, outputs[i] (an array of
 * ep_session_output_count entries that the caller provides) receives a new tensor for output i,
 * which the caller releases with ep_tensor_release. On failure, outputs are all set to NULL. */
EP_API ep_status ep_session_run(ep_session* session, const ep_input* inputs, size_t input_count,
                                ep_tensor** outputs);

EP_API ep_status ep_tensor_info_get(const ep_tensor* tensor, ep_tensor_info* out);
EP_API const void* ep_tensor_data(const ep_tensor* tensor);
EP_API size_t ep_tensor_byte_size(const ep_tensor* tensor);
EP_API void ep_tensor_release(ep_tensor* tensor);

#ifdef __cplusplus
}
#endif

#endif /* EDGEPORT_EDGEPORT_H */
