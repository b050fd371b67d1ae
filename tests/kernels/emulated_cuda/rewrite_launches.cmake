# Rewrites a kernel source (.cu) into C++ for the host emulation of CUDA (see device_emulation.hpp):
#   kernel<<<grid, block, shared, stream>>>(args)  ->  kernel | launch_config_of(grid, block, shared, stream) | kernel_args(args)
#   extern __shared__ T name[];                     ->  T* name = dynamic_shared<T>();
# Usage: cmake -DINPUT=x.cu -DOUTPUT=x.cpp -P rewrite_launches.cmake
file(READ "${INPUT}" source)
string(REPLACE "<<<" " | ::glm4::emulated_cuda::launch_config_of(" source "${source}")
string(REGEX REPLACE ">>>[ \t\r\n]*\\(" ") | ::glm4::emulated_cuda::kernel_args(" source "${source}")
string(REGEX REPLACE "extern __shared__ ([A-Za-z_][A-Za-z_0-9: ]*) ([A-Za-z_][A-Za-z_0-9]*)\\[\\];"
       "\\1* \\2 = ::glm4::emulated_cuda::dynamic_shared<\\1>();" source "${source}")
if(source MATCHES "<<<|>>>|extern __shared__")
  message(FATAL_ERROR "rewrite_launches: ${INPUT} has a launch or shared declaration this script does not understand")
endif()
file(WRITE "${OUTPUT}.new" "#line 1 \"${INPUT}\"\n${source}")
# Unchanged output keeps its timestamp, so an edit elsewhere does not recompile every kernel.
file(COPY_FILE "${OUTPUT}.new" "${OUTPUT}" ONLY_IF_DIFFERENT)
file(REMOVE "${OUTPUT}.new")
