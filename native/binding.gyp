{
  "targets": [
    {
      "target_name": "prunebench_native",
      "sources": ["src/addon.cc", "src/sparse.cc", "src/conv_layout.cc", "src/smallconv.cc", "src/gemmconv.cc", "src/scatterconv.cc"],
      "include_dirs": ["/usr/include/torch/csrc/api/include"],
      "cflags!": ["-fno-exceptions", "-fno-rtti"],
      "cflags_cc!": ["-fno-exceptions", "-fno-rtti", "-std=gnu++17", "-std=gnu++14", "-std=c++14"],
      "cflags_cc": ["-std=c++17", "-fexceptions", "-frtti", "-O3", "-march=x86-64-v3", "-Wno-unused-parameter", "-Wno-deprecated-declarations"],
      "libraries": ["-ltorch", "-ltorch_cpu", "-lc10", "-ldnnl"],
      "defines": ["NAPI_VERSION=8"]
    }
  ]
}
