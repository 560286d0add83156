#include "engine/data_loader.h"

#include "engine/error.h"

namespace cpc {

DataLoader::DataLoader(const WindowDataset& dataset, const BatchSampler& sampler, int64_t first_step, int rank,
                       int world, int prefetch)
    : dataset_(dataset), sampler_(sampler), rank_(rank), world_(world), next_fill_(first_step), next_take_(first_step) {
  CPC_CHECK(prefetch >= 1, "data loader: prefetch must be >= 1");
  const int64_t b = sampler.global_batch() / world;
  // prefetch batches in flight plus the one the trainer holds.
  for (int i = 0; i < prefetch + 1; ++i) {
    ring_.push_back({-1, Tensor::empty({b, dataset.channels(), dataset.window()}), {}});
    ring_.back().windows.reserve(static_cast<size_t>(b));
  }
  worker_ = std::thread([this] { run(); });
}

DataLoader::~DataLoader() {
  {
    std::lock_guard<std::mutex> g(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  worker_.join();
}

void DataLoader::run() {
  const int64_t slots = static_cast<int64_t>(ring_.size());
  while (true) {
    int64_t step;
    {
      std::unique_lock<std::mutex> g(mu_);
      // Slot next_fill_ % slots is free once the trainer moved past the step it held.
      cv_.wait(g, [&] { return stop_ || next_fill_ < next_take_ + slots - 1; });
      if (stop_) return;
      step = next_fill_;
    }
    Batch& b = ring_[static_cast<size_t>(step % slots)];
    try {
      std::vector<WindowRef> w = sampler_.batch(step, rank_, world_);
      b.windows.assign(w.begin(), w.end());
      const int64_t per = dataset_.channels() * dataset_.window();
      for (size_t i = 0; i < b.windows.size(); ++i)
        dataset_.read_window(b.windows[i].recording, b.windows[i].start, b.x.f32() + static_cast<int64_t>(i) * per);
      b.step = step;
    } catch (const std::exception& e) {
      std::lock_guard<std::mutex> g(mu_);
      error_ = e.what();
      stop_ = true;
      cv_.notify_all();
      return;
    }
    {
      std::lock_guard<std::mutex> g(mu_);
      ++next_fill_;
    }
    cv_.notify_all();
  }
}

const Batch& DataLoader::next() {
  std::unique_lock<std::mutex> g(mu_);
  const int64_t step = next_take_;
  cv_.wait(g, [&] { return next_fill_ > step || !error_.empty(); });
  CPC_CHECK(error_.empty() || next_fill_ > step, "data loader: ", error_);
  ++next_take_;
  cv_.notify_all();
  return ring_[static_cast<size_t>(step % static_cast<int64_t>(ring_.size()))];
}

}  // namespace cpc
