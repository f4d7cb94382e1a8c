// Validates Kubernetes objects (a multi-document YAML stream, as `kubectl kustomize` renders it)
// against the API's schemas, offline: npm's kubernetes-models for the built-in kinds and
// @kubernetes-models/prometheus-operator for ServiceMonitor and PrometheusRule. Exits 1 naming
// each object that fails and why, or a kind it has no schema for; with --image NAME, also when a
// container's image is not NAME (the one scripts/image.sh builds).
//
//   node tests/kubernetes/validate.js RENDERED.yaml [--image ghostwatch:0.1.0]
//
// What the schemas check: types, required fields, enumerations and formats. What they do not:
// unknown fields (their validators allow additional properties), which only a server's
// `--validate=strict` catches.
"use strict";
const fs = require("fs");
const YAML = require("yaml");

const [file, flag, expectedImage] = process.argv.slice(2);
if (!file || (flag !== undefined && (flag !== "--image" || !expectedImage))) {
  console.error("usage: node validate.js RENDERED.yaml [--image NAME]");
  process.exit(2);
}

// The module that holds a kind's model: core ("v1") and named API groups of kubernetes-models,
// and prometheus-operator's group.
function modelFor(apiVersion, kind) {
  const [group, version] = apiVersion.includes("/") ? apiVersion.split("/") : ["", apiVersion];
  const module =
    group === "monitoring.coreos.com"
      ? `@kubernetes-models/prometheus-operator/${group}/${version}`
      : group === ""
        ? `kubernetes-models/${version}`
        : `kubernetes-models/${group}/${version}`;
  let models;
  try {
    models = require(module);
  } catch (e) {
    return null;
  }
  return models[kind] || null;
}

function containersOf(object) {
  const spec = object.spec && object.spec.template && object.spec.template.spec;
  return spec ? [...(spec.initContainers || []), ...(spec.containers || [])] : [];
}

const documents = YAML.parseAllDocuments(fs.readFileSync(file, "utf8"))
  .map((d) => d.toJS())
  .filter((o) => o !== null);
let failed = 0;
for (const object of documents) {
  const name = `${object.kind}/${object.metadata && object.metadata.name}`;
  const Model = modelFor(object.apiVersion || "", object.kind || "");
  if (!Model) {
    console.error(`FAIL ${name}: no schema for ${object.apiVersion} ${object.kind}`);
    failed++;
    continue;
  }
  let valid = true;
  try {
    new Model(object).validate();
  } catch (e) {
    console.error(`FAIL ${name} (${object.apiVersion}): ${e.message}`);
    valid = false;
  }
  for (const c of containersOf(object)) {
    if (expectedImage && c.image !== expectedImage) {
      console.error(`FAIL ${name}: container ${c.name} runs ${c.image}, not ${expectedImage} (scripts/image.sh's)`);
      valid = false;
    }
  }
  if (valid) console.log(`valid ${name} (${object.apiVersion})`);
  else failed++;
}
if (documents.length === 0) {
  console.error("FAIL: no objects to validate");
  failed++;
}
console.log(`${documents.length - failed} of ${documents.length} objects valid`);
process.exit(failed ? 1 : 0);
