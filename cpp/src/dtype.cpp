// Element types: sizes and names (part of the C API, needed by the readers too).
#include "edgeport/edgeport.h"

extern "C" {

size_t ep_dtype_size(ep_dtype dtype) {
    switch (dtype) {
        case EP_DTYPE_FLOAT64: case EP_DTYPE_INT64: case EP_DTYPE_UINT64: return 8;
        case EP_DTYPE_FLOAT32: case EP_DTYPE_INT32: case EP_DTYPE_UINT32: return 4;
        case EP_DTYPE_FLOAT16: case EP_DTYPE_INT16: case EP_DTYPE_UINT16: return 2;
        case EP_DTYPE_INT8: case EP_DTYPE_UINT8: case EP_DTYPE_BOOL: return 1;
        default: return 0;
    }
}

const char* ep_dtype_name(ep_dtype dtype) {
    switch (dtype) {
        case EP_DTYPE_FLOAT32: return "float32";
        case EP_DTYPE_FLOAT64: return "float64";
        case EP_DTYPE_FLOAT16: return "float16";
        case EP_DTYPE_INT8: return "int8";
        case EP_DTYPE_INT16: return "int16";
        case EP_DTYPE_INT32: return "int32";
        case EP_DTYPE_INT64: return "int64";
        case EP_DTYPE_UINT8: return "uint8";
        case EP_DTYPE_UINT16: return "uint16";
        case EP_DTYPE_UINT32: return "uint32";
        case EP_DTYPE_UINT64: return "uint64";
        case EP_DTYPE_BOOL: return "bool";
        default: return "undefined";
    }
}

}  // extern "C"
