#pragma once
// What duet-bench reads off the GPU: process memory as nvidia-smi reports it (context included),
// this process's caching-allocator peak (builds with CUDA), device-to-device copy bandwidth.
#include <c10/core/Device.h>
#include <sys/types.h>

#include <string>

namespace duet::bench {

std::string gpu_name();                       // nvidia-smi's name of GPU 0, or "cpu"
double process_gpu_mib(pid_t pid);            // nvidia-smi used_memory of pid; -1 when unknown
void reset_peak(const c10::Device& dev);      // caching allocator peak statistics
double peak_allocated_mib(const c10::Device& dev);  // -1 without CUDA
void synchronize(const c10::Device& dev);
// GB/s counting bytes read plus bytes written, from repeated 1 GiB copies; -1 on CPU.
double copy_bandwidth_gbs(const c10::Device& dev);

}  // namespace duet::bench
