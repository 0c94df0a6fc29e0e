/* A null CUDA driver (libcuda.so): devices whose memory is host memory and whose kernels do
   nothing. scripts/cuda-kernels.sh runs a whole training step of Burn's CUDA runtime on it, on a
   machine without a GPU, so that every kernel of the step is compiled with the real NVRTC;
   crates/m3dfel/tests/cuda_check.rs makes it answer as a machine that lacks something would.
   The driver functions Burn 0.21 (cubecl-cuda 0.10, cudarc 0.19) calls, with the CUDA driver
   API's signatures; a missing one stops the run with "Missing symbol cuX".
   NULLCUDA_CC: the compute capability to report (default 9.0, Hopper: kernels for sm_90a).
   NULLCUDA_PTX_DIR: a folder to write each module's PTX into (00001.ptx, …).
   NULLCUDA_INIT: the error cuInit returns (default 0, success), NULLCUDA_GPUS: how many
   devices there are (default 1), NULLCUDA_DRIVER: the CUDA version the driver reports, as
   1000 × major + 10 × minor (default 99000: newer than any NVRTC). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <stdint.h>
typedef unsigned long long dptr;
static int handles[16];
static long modules;
static int from_env(const char *name, int fallback) { const char *v = getenv(name); return v ? atoi(v) : fallback; }
/* NULLCUDA_CC "major.minor" (default 9.0): part 0 or 1. */
static int capability(int part) {
    const char *cc = getenv("NULLCUDA_CC");
    int major = 9, minor = 0;
    if (cc) sscanf(cc, "%d.%d", &major, &minor);
    return part ? minor : major;
}
int cuInit(unsigned f) { return from_env("NULLCUDA_INIT", 0); }
int cuDriverGetVersion(int *v) { *v = from_env("NULLCUDA_DRIVER", 99000); return 0; }
int cuDeviceGetCount(int *n) { *n = from_env("NULLCUDA_GPUS", 1); return 0; }
int cuDeviceGet(int *d, int i) {
    if (i >= from_env("NULLCUDA_GPUS", 1)) return 101; /* CUDA_ERROR_INVALID_DEVICE */
    *d = i; return 0;
}
int cuDeviceGetName(char *s, int n, int d) { snprintf(s, n, "null CUDA device %d (sm_%d%d)", d, capability(0), capability(1)); return 0; }
int cuDeviceTotalMem_v2(size_t *b, int d) { *b = (size_t)80 << 30; return 0; }
int cuMemGetInfo_v2(size_t *f, size_t *t) { *f = (size_t)78 << 30; *t = (size_t)80 << 30; return 0; }
int cuDeviceGetAttribute(int *v, int a, int d) {
    switch (a) {
    case 1: *v = 1024; break;            /* max threads per block */
    case 2: case 3: *v = 1024; break;    /* block dim x, y */
    case 4: *v = 64; break;
    case 5: *v = 2147483647; break;      /* grid dim x */
    case 6: case 7: *v = 65535; break;
    case 8: *v = 49152; break;           /* shared per block */
    case 10: *v = 32; break;             /* warp */
    case 16: *v = 132; break;            /* SMs */
    case 75: *v = capability(0); break;  /* compute capability major */
    case 76: *v = capability(1); break;  /* minor */
    case 97: *v = 232448; break;         /* shared per block, opt-in */
    default: *v = 1; break;
    }
    return 0;
}
/* The driver's name and words for the errors this driver can return. */
static const struct { int code; const char *name, *text; } errors[] = {
    {100, "CUDA_ERROR_NO_DEVICE", "no CUDA-capable device is detected"},
    {101, "CUDA_ERROR_INVALID_DEVICE", "invalid device ordinal"},
    {803, "CUDA_ERROR_SYSTEM_DRIVER_MISMATCH", "system has unsupported display driver / cuda driver combination"},
    {999, "CUDA_ERROR_UNKNOWN", "unknown error"},
};
static int describe(int e, const char **s, int text) {
    for (size_t i = 0; i < sizeof errors / sizeof errors[0]; i++)
        if (errors[i].code == e) { *s = text ? errors[i].text : errors[i].name; return 0; }
    return 1; /* CUDA_ERROR_INVALID_VALUE, as the driver answers for a code it does not know */
}
int cuGetErrorName(int e, const char **s) { return describe(e, s, 0); }
int cuGetErrorString(int e, const char **s) { return describe(e, s, 1); }
int cuDevicePrimaryCtxRetain(void **c, int d) { *c = &handles[0]; return 0; }
int cuDevicePrimaryCtxRelease_v2(int d) { return 0; }
int cuCtxSetCurrent(void *c) { return 0; }
int cuCtxGetCurrent(void **c) { *c = &handles[0]; return 0; }
int cuCtxSynchronize(void) { return 0; }
int cuStreamCreate(void **s, unsigned f) { *s = &handles[1]; return 0; }
int cuStreamCreateWithPriority(void **s, unsigned f, int p) { *s = &handles[1]; return 0; }
int cuStreamSynchronize(void *s) { return 0; }
int cuStreamDestroy_v2(void *s) { return 0; }
int cuStreamWaitEvent(void *s, void *e, unsigned f) { return 0; }
int cuEventCreate(void **e, unsigned f) { *e = malloc(8); return 0; }
int cuEventRecord(void *e, void *s) { return 0; }
int cuEventSynchronize(void *e) { return 0; }
int cuEventQuery(void *e) { return 0; }
int cuEventDestroy_v2(void *e) { free(e); return 0; }
int cuMemAlloc_v2(dptr *p, size_t n) { void *m = calloc(1, n ? n : 1); if (!m) return 2; *p = (dptr)(uintptr_t)m; return 0; }
int cuMemAllocAsync(dptr *p, size_t n, void *s) { return cuMemAlloc_v2(p, n); }
int cuMemFree_v2(dptr p) { free((void *)(uintptr_t)p); return 0; }
int cuMemFreeAsync(dptr p, void *s) { return cuMemFree_v2(p); }
int cuMemAllocHost_v2(void **p, size_t n) { *p = calloc(1, n ? n : 1); return *p ? 0 : 2; }
int cuMemHostAlloc(void **p, size_t n, unsigned f) { return cuMemAllocHost_v2(p, n); }
int cuMemFreeHost(void *p) { free(p); return 0; }
int cuMemcpyHtoDAsync_v2(dptr d, const void *s, size_t n, void *st) { memcpy((void *)(uintptr_t)d, s, n); return 0; }
int cuMemcpyDtoHAsync_v2(void *d, dptr s, size_t n, void *st) { memcpy(d, (void *)(uintptr_t)s, n); return 0; }
int cuMemcpyDtoDAsync_v2(dptr d, dptr s, size_t n, void *st) { memmove((void *)(uintptr_t)d, (void *)(uintptr_t)s, n); return 0; }
int cuMemcpyHtoD_v2(dptr d, const void *s, size_t n) { return cuMemcpyHtoDAsync_v2(d, s, n, 0); }
int cuMemcpyDtoH_v2(void *d, dptr s, size_t n) { return cuMemcpyDtoHAsync_v2(d, s, n, 0); }
int cuMemsetD8Async(dptr d, unsigned char v, size_t n, void *s) { memset((void *)(uintptr_t)d, v, n); return 0; }
int cuMemsetD32Async(dptr d, unsigned v, size_t n, void *s) { unsigned *p = (unsigned *)(uintptr_t)d; for (size_t i = 0; i < n; i++) p[i] = v; return 0; }
typedef struct {
    size_t srcXInBytes, srcY; int srcMemoryType; const void *srcHost; dptr srcDevice; void *srcArray; size_t srcPitch;
    size_t dstXInBytes, dstY; int dstMemoryType; void *dstHost; dptr dstDevice; void *dstArray; size_t dstPitch;
    size_t WidthInBytes, Height;
} Memcpy2D;
int cuMemcpy2DAsync_v2(const Memcpy2D *c, void *s) {
    const char *src = c->srcMemoryType == 1 ? (const char *)c->srcHost : (const char *)(uintptr_t)c->srcDevice;
    char *dst = c->dstMemoryType == 1 ? (char *)c->dstHost : (char *)(uintptr_t)c->dstDevice;
    for (size_t y = 0; y < c->Height; y++)
        memcpy(dst + c->dstXInBytes + (c->dstY + y) * c->dstPitch, src + c->srcXInBytes + (c->srcY + y) * c->srcPitch, c->WidthInBytes);
    return 0;
}
int cuModuleLoadData(void **m, const void *image) {
    modules++;
    const char *dir = getenv("NULLCUDA_PTX_DIR");
    if (dir) { char path[4096]; snprintf(path, sizeof path, "%s/%05ld.ptx", dir, modules); FILE *f = fopen(path, "w"); if (f) { fputs((const char *)image, f); fclose(f); } }
    *m = &handles[2]; return 0;
}
int cuModuleGetFunction(void **f, void *m, const char *name) { *f = &handles[3]; return 0; }
int cuModuleUnload(void *m) { return 0; }
int cuFuncSetAttribute(void *f, int a, int v) { return 0; }
int cuFuncGetAttribute(int *v, int a, void *f) { *v = 0; return 0; }
int cuFuncSetCacheConfig(void *f, int c) { return 0; }
int cuLaunchKernel(void *f, unsigned gx, unsigned gy, unsigned gz, unsigned bx, unsigned by, unsigned bz, unsigned sh, void *s, void **p, void **e) { return 0; }
int cuTensorMapEncodeTiled(void *t, ...) { return 0; }
int cuTensorMapEncodeIm2col(void *t, ...) { return 0; }
int cuTensorMapEncodeIm2colWide(void *t, ...) { return 0; }
