#include "models/cpc_config.h"

#include <filesystem>
#include <system_error>
#include <fstream>
#include <set>
#include <sstream>

#include "engine/core/error.h"

namespace cpc {

namespace {

using json = nlohmann::json;

// "file.json:" + "train" -> "file.json: train"; "file.json: train" + "lr" -> "file.json: train.lr".
std::string sub(const std::string& where, const std::string& key) {
  return where + (!where.empty() && where.back() == ':' ? " " : ".") + key;
}

void only_keys(const json& j, const std::string& where, std::initializer_list<const char*> allowed) {
  CPC_CHECK(j.is_object(), where, ": expected an object, found ", j.dump());
  std::set<std::string> ok(allowed.begin(), allowed.end());
  std::string list;
  for (const char* a : allowed) list += std::string(list.empty() ? "" : ", ") + a;
  for (const auto& [k, v] : j.items()) CPC_CHECK(ok.count(k), where, ": unknown key '", k, "' (expected ", list, ")");
}

int64_t positive_int(const json& j, const std::string& where, const char* key, int64_t fallback, int64_t min = 1) {
  if (!j.contains(key)) return fallback;
  const json& v = j.at(key);
  CPC_CHECK(v.is_number_integer() && v.get<int64_t>() >= min, sub(where, key), ": expected an integer >= ", min,
            ", found ", v.dump());
  return v.get<int64_t>();
}

// [lo, hi] with lo <= hi, both within [min, max].
AugmentRange range(const json& j, const std::string& where, const char* key, double min, double max) {
  const json& v = j.at(key);
  CPC_CHECK(v.is_array() && v.size() == 2 && v[0].is_number() && v[1].is_number(), sub(where, key),
            ": expected a range [lo, hi], found ", v.dump());
  const AugmentRange r{v[0].get<double>(), v[1].get<double>()};
  CPC_CHECK(min <= r.lo && r.lo <= r.hi && r.hi <= max, sub(where, key), ": expected ", min, " <= lo <= hi <= ", max,
            ", found ", v.dump());
  return r;
}

double number(const json& j, const std::string& where, const char* key, double fallback, double min = 0.0);

AugmentOptions augment_options(const json& j, const std::string& where) {
  only_keys(j, where,
            {"noise_snr_db", "gain_db", "bandpass", "time_mask", "baseline_wander", "powerline", "amplitude_scale",
             "lead_dropout"});
  AugmentOptions o;
  if (j.contains("noise_snr_db")) o.noise_snr_db = range(j, where, "noise_snr_db", -20, 100);
  if (j.contains("gain_db")) o.gain_db = range(j, where, "gain_db", -40, 40);
  if (j.contains("amplitude_scale")) o.amplitude_scale = range(j, where, "amplitude_scale", 0, 100);
  if (j.contains("bandpass")) {
    const std::string w = sub(where, "bandpass");
    only_keys(j["bandpass"], w, {"low_hz", "high_hz", "p"});
    CPC_CHECK(j["bandpass"].contains("low_hz") && j["bandpass"].contains("high_hz"), w,
              ": expected low_hz and high_hz ranges");
    AugmentOptions::Bandpass b;
    b.low_hz = range(j["bandpass"], w, "low_hz", 1e-3, 1e9);
    b.high_hz = range(j["bandpass"], w, "high_hz", 1e-3, 1e9);
    b.p = number(j["bandpass"], w, "p", 1.0);
    CPC_CHECK(b.p <= 1.0 && b.low_hz.hi < b.high_hz.lo, w, ": expected p <= 1 and every low corner below every high one");
    o.bandpass = b;
  }
  if (j.contains("time_mask")) {
    const std::string w = sub(where, "time_mask");
    only_keys(j["time_mask"], w, {"count", "max_s"});
    o.time_mask = AugmentOptions::TimeMask{positive_int(j["time_mask"], w, "count", 1), number(j["time_mask"], w, "max_s", 0.05)};
  }
  if (j.contains("baseline_wander")) {
    const std::string w = sub(where, "baseline_wander");
    only_keys(j["baseline_wander"], w, {"amplitude", "max_hz"});
    CPC_CHECK(j["baseline_wander"].contains("amplitude"), w, ": expected an amplitude range");
    o.baseline_wander = AugmentOptions::Wander{range(j["baseline_wander"], w, "amplitude", 0, 1e9),
                                               number(j["baseline_wander"], w, "max_hz", 0.5, 0.05)};
  }
  if (j.contains("powerline")) {
    const std::string w = sub(where, "powerline");
    only_keys(j["powerline"], w, {"amplitude", "hz"});
    CPC_CHECK(j["powerline"].contains("amplitude"), w, ": expected an amplitude range");
    o.powerline = AugmentOptions::Powerline{range(j["powerline"], w, "amplitude", 0, 1e9),
                                            number(j["powerline"], w, "hz", 50.0, 1e-3)};
  }
  o.lead_dropout = number(j, where, "lead_dropout", 0.0);
  CPC_CHECK(o.lead_dropout < 1.0, sub(where, "lead_dropout"), ": expected a probability below 1, found ", o.lead_dropout);
  return o;
}

double number(const json& j, const std::string& where, const char* key, double fallback, double min) {
  if (!j.contains(key)) return fallback;
  const json& v = j.at(key);
  CPC_CHECK(v.is_number() && v.get<double>() >= min, sub(where, key), ": expected a number >= ", min, ", found ",
            v.dump());
  return v.get<double>();
}

ConvLayerSpec conv_layer(const json& j, const std::string& where) {
  only_keys(j, where, {"channels", "kernel", "stride", "padding"});
  return {positive_int(j, where, "channels", 0), positive_int(j, where, "kernel", 0),
          positive_int(j, where, "stride", 1), positive_int(j, where, "padding", 0, 0)};
}

EncoderConfig encoder_config(const json& j, const std::string& where) {
  only_keys(j, where, {"type", "norm", "layers", "stem", "blocks", "latent"});
  EncoderConfig e;
  CPC_CHECK(!j.contains("type") || j["type"].is_string(), where, ".type: expected \"conv\" or \"resnet\", found ",
            j.contains("type") ? j["type"].dump() : "");
  const std::string type = j.value("type", "conv");
  CPC_CHECK(type == "conv" || type == "resnet", where, ".type: '", type, "' is not one of conv, resnet");
  e.type = type == "conv" ? EncoderConfig::Type::conv : EncoderConfig::Type::resnet;
  if (j.contains("norm")) {
    CPC_CHECK(j["norm"].is_string() && (j["norm"] == "batch" || j["norm"] == "channel"), where,
              ".norm: expected \"batch\" or \"channel\", found ", j["norm"].dump());
    e.norm = parse_norm_kind(j["norm"]);
  }
  if (e.type == EncoderConfig::Type::conv) {
    CPC_CHECK(j.contains("layers") && j["layers"].is_array() && !j["layers"].empty(), where,
              ".layers: expected a non-empty array of {channels, kernel, stride, padding}");
    for (size_t i = 0; i < j["layers"].size(); ++i)
      e.layers.push_back(conv_layer(j["layers"][i], sub(where, "layers[" + std::to_string(i) + "]")));
  } else {
    if (j.contains("stem")) e.stem = conv_layer(j["stem"], sub(where, "stem"));
    CPC_CHECK(j.contains("blocks") && j["blocks"].is_array() && !j["blocks"].empty(), where,
              ".blocks: expected a non-empty array of {channels, kernel, stride}");
    for (size_t i = 0; i < j["blocks"].size(); ++i) {
      const std::string w = sub(where, "blocks[" + std::to_string(i) + "]");
      only_keys(j["blocks"][i], w, {"channels", "kernel", "stride"});
      const int64_t k = positive_int(j["blocks"][i], w, "kernel", 7);
      CPC_CHECK(k % 2 == 1, w, ".kernel: expected an odd kernel (padding keeps the length), found ", k);
      e.blocks.push_back(
          {positive_int(j["blocks"][i], w, "channels", 0), k, positive_int(j["blocks"][i], w, "stride", 1)});
    }
    e.latent = positive_int(j, where, "latent", 0, 0);
  }
  return e;
}

}  // namespace

int64_t EncoderConfig::out_channels() const {
  if (type == Type::conv) return layers.back().channels;
  return latent > 0 ? latent : blocks.back().channels;
}

int64_t EncoderConfig::downsampling() const {
  int64_t d = 1;
  if (type == Type::conv) {
    for (const auto& l : layers) d *= l.stride;
  } else {
    d = stem.stride;
    for (const auto& b : blocks) d *= b.stride;
  }
  return d;
}

int64_t EncoderConfig::out_length(int64_t L) const {
  auto conv_len = [](int64_t len, int64_t k, int64_t s, int64_t p) { return (len + 2 * p - (k - 1) - 1) / s + 1; };
  if (type == Type::conv) {
    for (const auto& l : layers) L = conv_len(L, l.kernel, l.stride, l.padding);
  } else {
    L = conv_len(L, stem.kernel, stem.stride, stem.padding);
    for (const auto& b : blocks) L = conv_len(L, b.kernel, b.stride, b.kernel / 2);
  }
  return L;
}

CpcConfig CpcConfig::from_json(const json& j, const std::string& where) {
  only_keys(j, where, {"data", "encoder", "context", "loss", "train"});
  CpcConfig c;
  c.source = j;
  if (j.contains("data")) {
    only_keys(j["data"], sub(where, "data"), {"channels", "window", "augment", "group_by"});
    if (j["data"].contains("group_by") && !j["data"]["group_by"].is_null()) {
      CPC_CHECK(j["data"]["group_by"].is_string(), sub(sub(where, "data"), "group_by"),
                ": expected the name of a label in the data (e.g. \"speaker\"), found ", j["data"]["group_by"].dump());
      c.group_by = j["data"]["group_by"].get<std::string>();
    }
    c.channels = positive_int(j["data"], sub(where, "data"), "channels", c.channels);
    c.window = positive_int(j["data"], sub(where, "data"), "window", c.window);
    if (j["data"].contains("augment") && !j["data"]["augment"].is_null())
      c.augment = augment_options(j["data"]["augment"], sub(sub(where, "data"), "augment"));
  }
  CPC_CHECK(j.contains("encoder"), where, " missing key 'encoder'");
  c.encoder = encoder_config(j["encoder"], sub(where, "encoder"));
  if (j.contains("context")) {
    only_keys(j["context"], sub(where, "context"), {"hidden", "layers"});
    c.context = positive_int(j["context"], sub(where, "context"), "hidden", c.context);
    c.context_layers = positive_int(j["context"], sub(where, "context"), "layers", c.context_layers);
  }
  if (j.contains("loss")) {
    json loss = j["loss"];
    CPC_CHECK(loss.is_object(), sub(where, "loss"), ": expected an object, found ", loss.dump());
    c.K = positive_int(loss, sub(where, "loss"), "K", c.K);
    if (loss.contains("predictor_bias")) {
      CPC_CHECK(loss["predictor_bias"].is_boolean(), sub(where, "loss.predictor_bias"),
                ": expected true or false, found ", loss["predictor_bias"].dump());
      c.predictor_bias = loss["predictor_bias"];
    }
    loss.erase("K");
    loss.erase("predictor_bias");
    c.loss = InfoNceOptions::from_json(loss, sub(where, "loss"));
  }
  if (j.contains("train")) {
    const json& t = j["train"];
    const std::string w = sub(where, "train");
    only_keys(t, w,
              {"batch_size", "steps", "seed", "lr", "weight_decay", "clip", "min_lr", "schedule", "warmup",
               "checkpoint_every", "validate_every", "validate_windows", "sync_batchnorm", "precision",
               "accumulate_steps"});
    TrainConfig& tc = c.train;
    tc.batch_size = positive_int(t, w, "batch_size", tc.batch_size);
    tc.steps = positive_int(t, w, "steps", tc.steps);
    tc.seed = positive_int(t, w, "seed", tc.seed, 0);
    tc.lr = number(t, w, "lr", tc.lr);
    tc.weight_decay = number(t, w, "weight_decay", tc.weight_decay);
    tc.clip = number(t, w, "clip", tc.clip);
    tc.min_lr = number(t, w, "min_lr", tc.min_lr);
    tc.warmup = positive_int(t, w, "warmup", tc.warmup, 0);
    tc.checkpoint_every = positive_int(t, w, "checkpoint_every", tc.checkpoint_every);
    tc.validate_every = positive_int(t, w, "validate_every", tc.validate_every);
    tc.validate_windows = positive_int(t, w, "validate_windows", tc.validate_windows, 0);
    tc.accumulate_steps = positive_int(t, w, "accumulate_steps", tc.accumulate_steps);
    if (t.contains("precision")) {
      CPC_CHECK(t["precision"].is_string() && (t["precision"] == "fp32" || t["precision"] == "bf16"), w,
                ".precision: expected \"fp32\" or \"bf16\", found ", t["precision"].dump());
      tc.precision = t["precision"];
    }
    if (t.contains("sync_batchnorm")) {
      CPC_CHECK(t["sync_batchnorm"].is_boolean(), w, ".sync_batchnorm: expected true or false, found ",
                t["sync_batchnorm"].dump());
      tc.sync_batchnorm = t["sync_batchnorm"];
    }
    if (t.contains("schedule")) {
      const json& s = t["schedule"];
      CPC_CHECK(s.is_string() && (s == "constant" || s == "warmup_cosine" || s == "noam"), w,
                ".schedule: expected \"constant\", \"warmup_cosine\" or \"noam\", found ", s.dump());
      tc.schedule = s;
    }
    CPC_CHECK(tc.min_lr <= tc.lr, w, ".min_lr: ", tc.min_lr, " is above train.lr ", tc.lr,
              " (the schedule decays from lr down to min_lr)");
  }
  // Shapes: the window must leave K + 1 encoded steps (and one more for t_mode random).
  const int64_t T = c.encoder.out_length(c.window);
  CPC_CHECK(T >= c.K + 1, sub(where, "data.window"), ": ", c.window, " samples encode to ", T, " steps (downsampling ",
            c.encoder.downsampling(), "), too few for loss.K = ", c.K, ": need at least ", c.K + 1,
            " steps, i.e. a window of about ", (c.K + 1) * c.encoder.downsampling(), " samples");
  return c;
}

CpcConfig CpcConfig::load(const std::string& path, const std::vector<std::string>& overrides) {
  std::error_code fs_ec;  // a path that cannot even be stat'ed (too long, no access) is not a file
  CPC_CHECK(!std::filesystem::is_directory(path, fs_ec), path, ": is a directory; expected a JSON config file");
  std::ifstream f(path);
  CPC_CHECK(f.good(), path, ": cannot open the config file");
  json j;
  try {
    j = json::parse(f);
  } catch (const json::exception& e) {  // syntax, and numbers beyond double's range
    fail(path, ": not valid JSON (", e.what(), ")");
  }
  for (const std::string& o : overrides) apply_override(j, o);
  try {
    return from_json(j, path + ":");
  } catch (const json::exception& e) {  // a value of the wrong JSON type that a check missed
    fail(path, ": a value has the wrong type (", e.what(), ")");
  }
}

void apply_override(json& j, const std::string& assignment) {
  const size_t eq = assignment.find('=');
  CPC_CHECK(eq != std::string::npos && eq > 0, "--set '", assignment, "': expected key.path=value");
  const std::string path = assignment.substr(0, eq), value = assignment.substr(eq + 1);
  json* node = &j;
  std::stringstream ss(path);
  std::string part, walked;
  std::vector<std::string> parts;
  while (std::getline(ss, part, '.')) parts.push_back(part);
  for (size_t i = 0; i < parts.size(); ++i) {
    walked += (walked.empty() ? "" : ".") + parts[i];
    const bool last = i + 1 == parts.size();
    if (node->is_null()) *node = json::object();  // a section given as null
    CPC_CHECK(node->is_object(), "--set ", path, ": '", walked.substr(0, walked.rfind('.')),
              "' is not an object in the config (found ", node->dump(), ")");
    if (!node->contains(parts[i]) && !last) {
      // Leaves may be added (keys with defaults), and whole top-level sections the
      // config omits; anything else is a misspelt path.
      static const std::set<std::string> sections{"data", "encoder", "context", "loss", "train"};
      CPC_CHECK(i == 0 && sections.count(parts[i]), "--set ", path, ": no key '", walked, "' in the config");
    }
    node = &(*node)[parts[i]];
  }
  json v;
  try {
    v = json::parse(value);
  } catch (const json::parse_error&) {
    v = value;  // not JSON: the text itself
  } catch (const json::exception& e) {
    fail("--set ", path, ": ", e.what());  // a number beyond double's range
  }
  *node = v;
  try {
    (void)j.dump();  // keys and strings must be valid UTF-8 (checkpoints keep the config as JSON)
  } catch (const json::type_error&) {
    fail("--set: '", json(assignment).dump(-1, ' ', false, json::error_handler_t::replace),
         "' is not valid UTF-8 text");
  }
}

}  // namespace cpc
