#include "edge/server/http_reply.hpp"

#include <chrono>

#include "edge/server/sse.hpp"

namespace duet::edge::server {

int64_t unix_now() {
  return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
}

void reply_error(httplib::Response& res, const ApiError& e) {
  res.status = e.status();
  res.set_content(json_text(e.body()), "application/json");
}

namespace {

// OpenAI's stream chunks as the job's sink: one per text delta, then the finish chunk and usage.
class SseSink final : public GenerationSink {
 public:
  SseSink(SseWriter& w, const ServeContext& ctx, bool chat, const std::string& id, int64_t created, bool usage)
      : w_(w), ctx_(ctx), chat_(chat), id_(id), created_(created), usage_(usage) {}
  bool text(const std::string& delta) override { return w_.send(chunk(delta, "")); }
  void finish(const GenerationOutcome& o) override {
    if (o.stop == StopReason::cancelled) return;  // the reader is gone
    // duet's own reason beside OpenAI's: the page tells the ending rule from the model's end
    auto last = chunk("", finish_reason(o.stop));
    last["stop_reason"] = to_string(o.stop);
    w_.send(last);
    if (usage_) w_.send(usage_chunk(chat_, id_, created_, ctx_.model_id, {o.prompt_tokens, o.completion_tokens}));
  }

 private:
  nlohmann::json chunk(const std::string& text, const std::string& finish) const {
    return chat_ ? chat_chunk(id_, created_, ctx_.model_id, text, finish, false)
                 : completion_chunk(id_, created_, ctx_.model_id, text, finish);
  }
  SseWriter& w_;
  const ServeContext& ctx_;
  bool chat_;
  std::string id_;
  int64_t created_;
  bool usage_;
};

}  // namespace

void stream_job(httplib::Response& res, ServeContext& ctx, const GenerationJob& job, bool chat, const std::string& id,
                int64_t created, bool usage, const nlohmann::json& lead) {
  res.set_header("Cache-Control", "no-cache");
  res.set_header("X-Accel-Buffering", "no");
  res.set_chunked_content_provider(
      "text/event-stream", [&ctx, job, chat, id, created, usage, lead](size_t, httplib::DataSink& sink) {
        SseWriter w([&sink](const std::string& b) { return sink.write(b.data(), b.size()); });
        if (!lead.is_null()) w.send(lead);
        try {
          SseSink out(w, ctx, chat, id, created, usage);
          if (run_job(ctx, job, out).stop == StopReason::cancelled) return false;  // the reader is gone
        } catch (...) {
          // the status line is gone already: the error travels as an event
          w.send(to_api_error(std::current_exception()).body());
        }
        w.done();
        sink.done();
        return true;
      });
}

}  // namespace duet::edge::server
