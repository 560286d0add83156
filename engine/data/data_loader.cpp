#include "engine/data/data_loader.h"

#include <utility>

#include "engine/core/backend.h"
#include "engine/core/error.h"

namespace cpc {

DataLoader::DataLoader(const WindowDataset& dataset, const BatchSampler& sampler, int64_t first_step, int rank,
                       int world, int prefetch, Device device, int micro, LoaderAugment augment)
    : dataset_(dataset),
      sampler_(sampler),
      rank_(rank),
      world_(world),
      micro_(micro),
      device_(device),
      augment_(std::move(augment)),
      next_fill_(first_step * micro),
      next_take_(first_step * micro) {
  CPC_CHECK(prefetch >= 1, "data loader: prefetch must be >= 1");
  CPC_CHECK(micro >= 1 && sampler.global_batch() % (static_cast<int64_t>(world) * micro) == 0,
            "data loader: a global batch of ", sampler.global_batch(), " does not split into ", micro,
            " micro-batches x ", world, " ranks");
  const int64_t b = sampler.global_batch() / world / micro;
  // prefetch batches in flight plus the one the trainer holds.
  for (int i = 0; i < prefetch + 1; ++i) {
    Batch& slot = ring_.emplace_back();
    slot.x = Tensor::empty({b, dataset.channels(), dataset.window()});
    slot.windows.reserve(static_cast<size_t>(b));
    if (device_ != Device::cpu()) slot.x_device = Tensor::empty(slot.x.shape(), device_);
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
  // The device buffers are freed next: order that after any copy still in flight.
  if (last_ticket_ != 0) {
    try {
      backend(device_).wait_copy(last_ticket_);
    } catch (const std::exception&) {  // a destructor must not throw; the device error surfaces elsewhere
    }
  }
}

void DataLoader::run() {
  const int64_t slots = static_cast<int64_t>(ring_.size());
  while (true) {
    int64_t item;  // step * micro_ + micro-batch
    {
      std::unique_lock<std::mutex> g(mu_);
      // Slot next_fill_ % slots is free once the trainer moved past the item it held.
      cv_.wait(g, [&] { return stop_ || next_fill_ < next_take_ + slots - 1; });
      if (stop_) return;
      item = next_fill_;
    }
    Batch& b = ring_[static_cast<size_t>(item % slots)];
    const int64_t step = item / micro_;
    const int micro = static_cast<int>(item % micro_);
    try {
      std::vector<WindowRef> w = sampler_.batch(step, micro * world_ + rank_, world_ * micro_);
      b.windows.assign(w.begin(), w.end());
      const int64_t per = dataset_.channels() * dataset_.window();
      for (size_t i = 0; i < b.windows.size(); ++i) {
        float* x = b.x.f32() + static_cast<int64_t>(i) * per;
        dataset_.read_window(b.windows[i].recording, b.windows[i].start, x);
        if (augment_.options.any()) {  // one draw per (step, micro-batch, rank, row): resume replays it
          const uint64_t stream = ((static_cast<uint64_t>(step) * 131 + static_cast<uint64_t>(micro)) * 8191 +
                                   static_cast<uint64_t>(rank_)) * 65537 + i;
          augment_window(augment_.options, augment_.rate_hz, augment_.seed, stream, x, dataset_.channels(),
                         dataset_.window());
        }
      }
      // The slot's previous batch was used by work queued before the trainer released
      // it, and copy_async waits for all of that before it writes.
      if (b.x_device.defined()) b.ticket = backend(device_).copy_async(b.x_device, b.x);
      b.step = step;
      b.micro = micro;
    } catch (const std::exception& e) {
      std::lock_guard<std::mutex> g(mu_);
      error_ = e.what();
      stop_ = true;
      cv_.notify_all();
      return;
    }
    {
      std::lock_guard<std::mutex> g(mu_);
      if (b.ticket != 0) last_ticket_ = b.ticket;
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
  const Batch& b = ring_[static_cast<size_t>(step % static_cast<int64_t>(ring_.size()))];
  g.unlock();
  if (b.ticket != 0) backend(device_).wait_copy(b.ticket);  // the device's next work waits for the copy
  return b;
}

}  // namespace cpc
