// Data parallelism with real MPI processes: ctest runs this binary under
// `mpirun -np 2`. Every rank builds the same global problem from a seed, works on
// its share, and compares with the single-process computation of the whole.
#include <gtest/gtest.h>

#include <cmath>

#include "engine/distributed/communicator.h"
#include "engine/ops/ops.h"
#include "engine/core/random.h"
#include "losses/info_nce_loss.h"

namespace cpc {
namespace {

// Largest difference relative to b's largest value, plus 1e-7 absolute: gradients that are
// exactly 0 in exact arithmetic (the predictor biases under over_predictions) are ~1e-8 noise.
void expect_close(const std::vector<float>& a, const std::vector<float>& b, double rel, const char* what) {
  ASSERT_EQ(a.size(), b.size()) << what;
  double scale = 0, worst = 0;
  for (float v : b) scale = std::max(scale, static_cast<double>(std::abs(v)));
  for (size_t i = 0; i < a.size(); ++i) worst = std::max(worst, std::abs(static_cast<double>(a[i]) - b[i]));
  EXPECT_LE(worst, rel * scale + 1e-7) << what << ": max abs difference " << worst << " (scale " << scale << ")";
}

std::vector<float> rows(const Tensor& t, int64_t begin, int64_t end) { return t.slice(begin, end).contiguous().to_vector(); }

class DataParallel : public ::testing::Test {
 protected:
  void SetUp() override {
    comm = &communicator();
    if (comm->world() < 2) GTEST_SKIP() << "run under mpirun -np 2 (ctest does)";
    W = comm->world(), r = comm->rank();
  }
  Communicator* comm = nullptr;
  int64_t W = 1, r = 0;
};

TEST_F(DataParallel, AllGatherBackwardSumsEveryRanksGradientOfItsRows) {
  const int64_t n = 3, d = 4;
  Generator gen(11);
  const Tensor x_all = gen.normal_tensor({W * n, d}, 0, 1);
  std::vector<Tensor> w;  // rank q's loss is sum(w_q * gather(x))
  for (int64_t q = 0; q < W; ++q) w.push_back(gen.normal_tensor({W * n, d}, 0, 1));
  Tape tape;
  TapeScope scope(tape);
  Var* x = tape.var(x_all.slice(r * n, (r + 1) * n).clone(), true);
  Var* g = ops::all_gather(x, *comm);
  expect_close(g->value.to_vector(), x_all.to_vector(), 0, "gathered rows");
  // loss_r = sum(w_r * g): d loss_r / d g = w_r; the gradient of rank r's rows is
  // the sum over ranks q of w_q[rows of r].
  Var* wr = tape.var(w[static_cast<size_t>(r)]);
  Var* prod = ops::linear(ops::reshape(g, {1, W * n * d}), ops::reshape(wr, {1, W * n * d}), nullptr);
  tape.backward(ops::sum(prod));
  std::vector<float> expect(static_cast<size_t>(n * d), 0.f);
  for (int64_t q = 0; q < W; ++q) {
    const std::vector<float> wq = rows(w[static_cast<size_t>(q)], r * n, (r + 1) * n);
    for (size_t i = 0; i < expect.size(); ++i) expect[i] += wq[i];
  }
  expect_close(x->grad.to_vector(), expect, 1e-6, "all_gather gradient");
}

TEST_F(DataParallel, SynchronisedBatchNormEqualsOneProcessOnTheGlobalBatch) {
  const int64_t B = 3, C = 5, L = 7;
  Generator gen(5);
  const Tensor x_all = gen.normal_tensor({W * B, C, L}, 0.5f, 2.f), dy_all = gen.normal_tensor({W * B, C, L}, 0, 1);
  const Tensor gamma0 = gen.normal_tensor({C}, 1, 0.2f), beta0 = gen.normal_tensor({C}, 0, 0.2f);
  auto run = [&](const Tensor& x_in, const Tensor& dy, Communicator* sync, Tensor& rm, Tensor& rv) {
    Tape tape;
    TapeScope scope(tape);
    Parameter gamma(gamma0.clone()), beta(beta0.clone());
    Var* x = tape.var(x_in.clone(), true);
    Var* y = ops::batch_norm(x, &gamma, &beta, rm, rv, true, 0.1f, 1e-5f, sync);
    const std::vector<float> yv = y->value.to_vector();
    // d(sum(y * dy)) = dy
    Var* l = ops::linear(ops::reshape(y, {1, y->value.numel()}), tape.var(dy.reshape({1, dy.numel()})), nullptr);
    tape.backward(ops::sum(l));
    return std::vector<std::vector<float>>{yv, x->grad.to_vector(), gamma.grad.to_vector(), beta.grad.to_vector()};
  };
  Tensor rm1 = Tensor::zeros({C}), rv1 = Tensor::from_vector({C}, std::vector<float>(C, 1.f));
  Tensor rmW = Tensor::zeros({C}), rvW = Tensor::from_vector({C}, std::vector<float>(C, 1.f));
  const auto one = run(x_all, dy_all, nullptr, rm1, rv1);
  const auto mine = run(x_all.slice(r * B, (r + 1) * B), dy_all.slice(r * B, (r + 1) * B), comm, rmW, rvW);
  const int64_t per = B * C * L;
  expect_close(mine[0], std::vector<float>(one[0].begin() + r * per, one[0].begin() + (r + 1) * per), 1e-6, "y");
  expect_close(mine[1], std::vector<float>(one[1].begin() + r * per, one[1].begin() + (r + 1) * per), 1e-5, "dx");
  // Parameter gradients: each rank holds its share; their sum is the whole.
  Tensor dg = Tensor::from_vector({C}, mine[2]), db = Tensor::from_vector({C}, mine[3]);
  comm->allreduce(dg, ReduceOp::sum), comm->allreduce(db, ReduceOp::sum);
  expect_close(dg.to_vector(), one[2], 1e-5, "dgamma");
  expect_close(db.to_vector(), one[3], 1e-5, "dbeta");
  expect_close(rmW.to_vector(), rm1.to_vector(), 1e-6, "running_mean");
  expect_close(rvW.to_vector(), rv1.to_vector(), 1e-6, "running_var");
}

TEST_F(DataParallel, GlobalNegativesInfoNceEqualsOneProcessOnTheGlobalBatch) {  // all or sampled
  const int64_t B = 4, T = 9, Dc = 6, Dz = 5, K = 3;
  // negatives_count: every rank draws for its rows what one process draws for them.
  for (int64_t count : {0, 7})
  for (const char* normalize : {"over_latents", "over_predictions"})
    for (const char* negatives : {"batch", "batch_time"}) {
      SCOPED_TRACE(std::string(normalize) + " / " + negatives + " / negatives_count " + std::to_string(count));
      Generator gen(3);
      const Tensor c_all = gen.normal_tensor({W * B, T, Dc}, 0, 1), z_all = gen.normal_tensor({W * B, T, Dz}, 0, 1);
      std::vector<Tensor> w0, b0;
      for (int64_t k = 0; k < K; ++k) w0.push_back(gen.normal_tensor({Dz, Dc}, 0, 0.5f)), b0.push_back(gen.normal_tensor({Dz}, 0, 0.1f));
      const InfoNceOptions o = InfoNceOptions::from_json(
          {{"t_mode", "all"},
           {"normalize", normalize},
           {"negatives", negatives},
           {"negatives_from", "global"},
           {"negatives_count", count}},
          "test");
      double accuracy = 0;
      auto run = [&](const Tensor& c_in, const Tensor& z_in, Communicator* cm) {
        Tape tape;
        TapeScope scope(tape);
        std::vector<std::unique_ptr<Parameter>> ps;
        std::vector<LinearPredictor> preds;
        for (int64_t k = 0; k < K; ++k) {
          ps.push_back(std::make_unique<Parameter>(w0[static_cast<size_t>(k)].clone()));
          ps.push_back(std::make_unique<Parameter>(b0[static_cast<size_t>(k)].clone()));
          preds.push_back({ps[ps.size() - 2].get(), ps.back().get()});
        }
        InfoNceLoss loss(o);
        loss.set_communicator(cm);
        Var* c = tape.var(c_in.clone(), true);
        Var* z = tape.var(z_in.clone(), true);
        Generator step_rng(11);  // the trainer's per-step generator: the same on every rank
        const InfoNceResult& res = loss.forward(c, z, preds, &step_rng);
        tape.backward(res.loss);
        accuracy = res.accuracy;
        std::vector<std::vector<float>> out{{res.loss->value.to_vector()[0]}, c->grad.to_vector(), z->grad.to_vector()};
        for (auto& p : ps) out.push_back(p->grad.to_vector());
        return out;
      };
      const auto one = run(c_all, z_all, nullptr);
      const double one_accuracy = accuracy;
      const auto mine = run(c_all.slice(r * B, (r + 1) * B), z_all.slice(r * B, (r + 1) * B), comm);
      // The global loss is the mean of the ranks' losses; gradients of the mean loss:
      // rank r's input rows get (1/W) of its gathered gradient sum; parameters average.
      double stats[2] = {mine[0][0], accuracy};
      comm->allreduce_host(stats, 2);
      EXPECT_NEAR(stats[0] / W, one[0][0], 1e-5 * std::abs(one[0][0]));
      EXPECT_NEAR(stats[1] / W, one_accuracy, 1e-12);
      for (int which : {1, 2}) {
        const int64_t per = B * T * (which == 1 ? Dc : Dz);
        std::vector<float> scaled = mine[static_cast<size_t>(which)];
        for (float& v : scaled) v /= static_cast<float>(W);
        expect_close(scaled,
                     std::vector<float>(one[static_cast<size_t>(which)].begin() + r * per,
                                        one[static_cast<size_t>(which)].begin() + (r + 1) * per),
                     1e-5, which == 1 ? "dc" : "dz");
      }
      for (size_t p = 3; p < one.size(); ++p) {
        Tensor g = Tensor::from_vector({static_cast<int64_t>(mine[p].size())}, mine[p]);
        comm->allreduce(g, ReduceOp::mean);
        expect_close(g.to_vector(), one[p], 1e-5, "predictor gradient");
      }
    }
}

}  // namespace
}  // namespace cpc
