#pragma once
// A read-only memory map of a whole file (RAII). Checkpoints are read through it so that only the
// pages of the tensors a process asks for are ever faulted in.
#include <cstddef>
#include <cstdint>
#include <string>

namespace duet {

class MappedFile {
 public:
  explicit MappedFile(const std::string& path);  // throws std::runtime_error naming the file
  ~MappedFile();
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;

  const uint8_t* data() const { return data_; }
  size_t size() const { return size_; }
  const std::string& path() const { return path_; }

  // Drops the process's pages for [offset, offset+len) once their bytes were copied elsewhere,
  // so a full load does not hold the file and the converted weights at the same time.
  void release(size_t offset, size_t len) const;

 private:
  std::string path_;
  const uint8_t* data_ = nullptr;
  size_t size_ = 0;
};

}  // namespace duet
