# Finds every third-party dependency once, as imported targets the subdirectories link to.
# On Debian they come from the packages scripts/setup.sh installs; on the GPU machine from the
# unpacked .deb files (CMAKE_PREFIX_PATH) and the LibTorch inside PyTorch.
find_package(Threads REQUIRED)
find_package(PkgConfig REQUIRED)

pkg_check_modules(ZMQ QUIET IMPORTED_TARGET libzmq)
find_path(CPPZMQ_INCLUDE_DIR zmq.hpp REQUIRED)
add_library(duet_zmq INTERFACE)
target_include_directories(duet_zmq INTERFACE ${CPPZMQ_INCLUDE_DIR})
if(ZMQ_FOUND)
  target_link_libraries(duet_zmq INTERFACE PkgConfig::ZMQ)
else()
  # libzmq.pc names private dependencies (krb5-gssapi, openpgm, norm, libbsd) whose own .pc files
  # are missing where only libzmq3-dev and the runtime libraries were unpacked (the GPU machine's
  # /opt/deps): find the header and the shared library directly.
  find_path(ZMQ_INCLUDE_DIR zmq.h REQUIRED)
  find_library(ZMQ_LIBRARY zmq REQUIRED)
  message(STATUS "libzmq without pkg-config: ${ZMQ_LIBRARY}")
  target_include_directories(duet_zmq INTERFACE ${ZMQ_INCLUDE_DIR})
  target_link_libraries(duet_zmq INTERFACE ${ZMQ_LIBRARY})
endif()

find_path(MSGPACK_INCLUDE_DIR msgpack.hpp REQUIRED)
add_library(duet_msgpack INTERFACE)
target_include_directories(duet_msgpack INTERFACE ${MSGPACK_INCLUDE_DIR})
target_compile_definitions(duet_msgpack INTERFACE MSGPACK_NO_BOOST)

find_package(OpenSSL REQUIRED COMPONENTS Crypto)
find_package(nlohmann_json 3 REQUIRED)
find_package(CLI11 REQUIRED)
find_package(fmt REQUIRED)
find_package(spdlog REQUIRED)
find_path(TOMLPP_INCLUDE_DIR toml++/toml.h REQUIRED)
add_library(duet_toml INTERFACE)
target_include_directories(duet_toml INTERFACE ${TOMLPP_INCLUDE_DIR})
# header-only mode: no need for the shared library, same on both machines
target_compile_definitions(duet_toml INTERFACE TOML_HEADER_ONLY=1)

find_package(Torch REQUIRED)
# TorchConfig puts its flags (the C++ ABI switch) in TORCH_CXX_FLAGS; apply them to everything
# so that std::string crosses library boundaries safely.
set(CMAKE_CXX_FLAGS "${CMAKE_CXX_FLAGS} ${TORCH_CXX_FLAGS}")
# PyTorch 2.x ships its own, newer {fmt} in its include folder; Debian's spdlog 1.10 needs the
# fmt 9 it was built with. Where the two folders differ (the GPU machine), put fmt 9's folder
# first for every target, so that <fmt/...> from spdlog resolves to the matching version.
get_target_property(_duet_fmt_inc fmt::fmt INTERFACE_INCLUDE_DIRECTORIES)
list(GET TORCH_INCLUDE_DIRS 0 _duet_torch_inc)
if(_duet_fmt_inc AND EXISTS "${_duet_torch_inc}/fmt/core.h")
  list(GET _duet_fmt_inc 0 _duet_fmt_inc0)
  if(NOT _duet_fmt_inc0 STREQUAL _duet_torch_inc AND NOT _duet_fmt_inc0 STREQUAL "/usr/include")
    message(STATUS "duet: LibTorch bundles {fmt}; ${_duet_fmt_inc0} goes first for spdlog")
    include_directories(BEFORE SYSTEM "${_duet_fmt_inc0}")
  endif()
endif()

# LibTorch built with CUDA (the GPU machine's PyTorch): CUDA graphs, allocator statistics.
if(TORCH_CUDA_LIBRARIES OR TARGET torch_cuda)
  set(DUET_TORCH_HAS_CUDA ON)
  find_package(CUDAToolkit QUIET)
  message(STATUS "duet: LibTorch has CUDA (CUDA toolkit found: ${CUDAToolkit_FOUND})")
else()
  set(DUET_TORCH_HAS_CUDA OFF)
endif()

# duet's own CUDA kernels (common/cuda/*.cu): only where LibTorch has CUDA AND a CUDA compiler is
# found; elsewhere (Debian's CPU LibTorch, CI) nothing changes. Hopper (sm_90) unless set.
set(DUET_CUDA_KERNELS OFF)
option(DUET_BUILD_CUDA_KERNELS "Build duet's CUDA kernels where CUDA is found" ON)
if(DUET_TORCH_HAS_CUDA AND DUET_BUILD_CUDA_KERNELS)
  include(CheckLanguage)
  check_language(CUDA)
  if(CMAKE_CUDA_COMPILER AND CUDAToolkit_FOUND AND TARGET CUDA::cudart)
    # LibTorch's CMake config may have enabled CUDA already, with its own arch flags; duet's
    # kernels name theirs on the target (common/CMakeLists.txt)
    set(DUET_CUDA_ARCHITECTURES 90 CACHE STRING "CUDA architectures of duet's kernels (90: H100, H200)")
    set(CMAKE_CUDA_STANDARD 17)
    set(CMAKE_CUDA_STANDARD_REQUIRED ON)
    enable_language(CUDA)
    set(DUET_CUDA_KERNELS ON)
  endif()
  message(STATUS "duet: CUDA kernels ${DUET_CUDA_KERNELS} (compiler: ${CMAKE_CUDA_COMPILER})")
endif()

if(DUET_BUILD_TESTS)
  find_package(doctest REQUIRED)
endif()

# cpp-httplib (Debian libcpp-httplib-dev, a compiled library): `duet-edge serve` (edge/server/).
# Optional; the daemon's /metrics listener is its own (cloud/metrics_http.hpp) and needs nothing.
pkg_check_modules(HTTPLIB QUIET IMPORTED_TARGET cpp-httplib)
