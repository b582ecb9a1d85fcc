//! Issue 20, item 6: models, tokenizers, processors and pipelines are `Send + Sync`, and one of
//! each shared by many threads gives, call for call, the bits one thread gets alone.
#![cfg(feature = "all")]

use autocandle::image_processor::{AutoImageProcessor, ImageProcessor};
use autocandle::pipelines::{FillMaskPipeline, ObjectDetectionOptions, ObjectDetectionPipeline, Pipeline};
use autocandle::{
    AutoModelForCausalLM, AutoTokenizer, EncodeOptions, FeatureExtractor, ForCausalLm, GenerationConfig,
    GenerationMixin, ModelInputs, PreTrainedTokenizer, Task, TaskModel,
};
use autocandle_tests::fixture;
use candle_core::Tensor;

const THREADS: usize = 8;
const CALLS: usize = 50;

fn shared<T: Send + Sync + ?Sized>() {}

#[test]
fn every_shared_type_is_send_and_sync() {
    shared::<TaskModel>();
    shared::<dyn ForCausalLm>();
    shared::<PreTrainedTokenizer>();
    shared::<ImageProcessor>();
    shared::<FeatureExtractor>();
    // Every pipeline is a variant of `Pipeline`.
    shared::<Pipeline>();
}

/// Run `call(thread, i)` `CALLS` times on each of `THREADS` threads started together, and
/// check each result equals `alone(i)`, computed first on this thread.
fn same_as_alone<R: PartialEq + std::fmt::Debug + Send>(call: impl Fn(usize) -> R + Sync) {
    let alone: Vec<R> = (0..CALLS).map(&call).collect();
    let barrier = std::sync::Barrier::new(THREADS);
    let results: Vec<Vec<R>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..THREADS)
            .map(|thread| {
                let (call, barrier) = (&call, &barrier);
                s.spawn(move || {
                    barrier.wait();
                    // Each thread walks the calls from another start, so different inputs overlap.
                    let mut out: Vec<(usize, R)> =
                        (0..CALLS).map(|k| (thread * 7 + k) % CALLS).map(|i| (i, call(i))).collect();
                    out.sort_by_key(|(i, _)| *i);
                    out.into_iter().map(|(_, r)| r).collect()
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().expect("a thread panicked")).collect()
    });
    for (thread, got) in results.iter().enumerate() {
        assert_eq!(got, &alone, "thread {thread} differs from the single-threaded results");
    }
}

/// The bits of a float tensor.
fn bits(t: &Tensor) -> Vec<u32> {
    let values = t.flatten_all().and_then(|t| t.to_vec1::<f32>()).expect("a float tensor");
    values.into_iter().map(f32::to_bits).collect()
}

#[test]
fn one_model_and_tokenizer_shared_by_threads_give_the_bits_of_one_thread() {
    let dir = fixture("bert-masked-lm").to_string_lossy().into_owned();
    let model = TaskModel::from_pretrained(Task::MaskedLm, &dir).unwrap();
    let tokenizer = AutoTokenizer::from_pretrained(&dir).unwrap();
    let texts = ["paris is the [MASK] of france.", "the [MASK] sat on the mat.", "a b c [MASK] d e f g h i j k"];
    same_as_alone(|i| {
        let text = texts[i % texts.len()];
        let encoded = tokenizer.encode_batch(&[text], &EncodeOptions::new()).unwrap();
        let inputs: ModelInputs = encoded.to_inputs(&candle_core::Device::Cpu).unwrap();
        let output = model.forward(&inputs).unwrap();
        bits(output.get("logits").unwrap())
    });
}

#[test]
fn one_pipeline_shared_by_threads_gives_the_answers_of_one_thread() {
    let fill = FillMaskPipeline::new(&fixture("bert-masked-lm").to_string_lossy()).unwrap();
    let texts = ["paris is the [MASK] of france.", "the [MASK] sat on the mat."];
    same_as_alone(|i| {
        let predictions = fill.call(texts[i % texts.len()]).unwrap();
        predictions.into_iter().flatten().map(|p| (p.token, p.score.to_bits(), p.sequence)).collect::<Vec<_>>()
    });

    let dir = fixture("vision_pipelines/detr-object-detection");
    let detect = ObjectDetectionPipeline::new(&dir.to_string_lossy()).unwrap();
    let images =
        ["rgb_37x23.png", "photo_50x41.jpg"].map(|name| autocandle::open_image(fixture("images").join(name)).unwrap());
    let opts = ObjectDetectionOptions { threshold: 0.1 };
    same_as_alone(|i| {
        let found = detect.call_with(&images[i % images.len()], &opts).unwrap();
        found.into_iter().map(|o| (o.label_id, o.score.to_bits(), format!("{:?}", o.bounding_box))).collect::<Vec<_>>()
    });
}

#[test]
fn generation_from_several_threads_on_one_model() {
    let model = AutoModelForCausalLM::from_pretrained(&fixture("gpt2-causal-lm").to_string_lossy()).unwrap();
    let config = GenerationConfig::new().do_sample(false).max_new_tokens(6);
    let prompts: [&[u32]; 3] = [&[5, 17, 42], &[7, 8], &[1, 2, 3, 4, 5, 6]];
    same_as_alone(|i| model.generate(prompts[i % prompts.len()], &config).unwrap());
}

#[test]
fn one_image_processor_shared_by_threads() {
    let processor = AutoImageProcessor::from_pretrained(
        &fixture("vision_pipelines/dinov2-image-feature-extraction").to_string_lossy(),
    )
    .unwrap();
    let images = ["rgb_37x23.png", "photo_50x41.jpg", "gray_24x24.png"]
        .map(|name| autocandle::open_image(fixture("images").join(name)).unwrap());
    same_as_alone(|i| bits(&processor.preprocess(&images[i % images.len()..][..1]).unwrap()));
}
