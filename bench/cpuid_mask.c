/* LD_PRELOAD library for bench/as_cpu.py avx2: the process sees a CPU without AVX-512, AVX-VNNI,
 * AVX512-VNNI, AVX512-BF16 or AMX, so every library that picks its kernels from CPUID (ONNX
 * Runtime's MLAS, torch's cpuinfo and ATen, oneDNN, MKL, numpy) runs its AVX2 code paths.
 *
 * How: Linux's CPUID faulting (arch_prctl ARCH_SET_CPUID 0; the CPU flag cpuid_fault) makes
 * every CPUID instruction of this process trap with SIGSEGV. The handler runs the real CPUID
 * with faulting briefly off, clears those feature bits (leaf 7 subleaves 0 and 1), writes the
 * result into the trapped thread's registers and steps over the 2-byte instruction. The setting
 * is inherited by threads and reset by exec, so the library (kept in LD_PRELOAD) sets it again
 * in every program the command starts. A SIGSEGV that is not CPUID gets the default action.
 * What it cannot change: glibc's own choices made before the library loads, /proc/cpuinfo, and a
 * program that installs its own SIGSEGV handler later (pytest's faulthandler: -p no:faulthandler;
 * Chromium and Ray's processes end on their first CPUID).
 */
#define _GNU_SOURCE
#include <cpuid.h>
#include <signal.h>
#include <string.h>
#include <sys/syscall.h>
#include <ucontext.h>
#include <unistd.h>

#define ARCH_SET_CPUID 0x1012

static void on_segv(int sig, siginfo_t *info, void *context) {
    ucontext_t *uc = context;
    greg_t *r = uc->uc_mcontext.gregs;
    const unsigned char *ip = (const unsigned char *)r[REG_RIP];
    (void)sig; (void)info;
    if (ip[0] != 0x0f || ip[1] != 0xa2) { signal(SIGSEGV, SIG_DFL); return; }
    unsigned leaf = (unsigned)r[REG_RAX], sub = (unsigned)r[REG_RCX], a, b, c, d;
    syscall(SYS_arch_prctl, ARCH_SET_CPUID, 1);
    __cpuid_count(leaf, sub, a, b, c, d);
    syscall(SYS_arch_prctl, ARCH_SET_CPUID, 0);
    if (leaf == 7 && sub == 0) {
        b &= ~((1u<<16)|(1u<<17)|(1u<<21)|(1u<<26)|(1u<<27)|(1u<<28)|(1u<<30)|(1u<<31));
        c &= ~((1u<<1)|(1u<<6)|(1u<<11)|(1u<<12)|(1u<<14));
        d &= ~((1u<<2)|(1u<<3)|(1u<<8)|(1u<<22)|(1u<<23)|(1u<<24)|(1u<<25));
    } else if (leaf == 7 && sub == 1) {
        a &= ~((1u<<4)|(1u<<5)|(1u<<21)|(1u<<23));
    }
    r[REG_RAX] = a; r[REG_RBX] = b; r[REG_RCX] = c; r[REG_RDX] = d;
    r[REG_RIP] += 2;
}

__attribute__((constructor)) static void mask_cpuid(void) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = on_segv;
    sa.sa_flags = SA_SIGINFO;
    sigaction(SIGSEGV, &sa, 0);
    if (syscall(SYS_arch_prctl, ARCH_SET_CPUID, 0) != 0) {
        static const char msg[] = "cpuid_mask: this CPU or kernel has no CPUID faulting\n";
        write(2, msg, sizeof msg - 1);
        _exit(3);
    }
}
