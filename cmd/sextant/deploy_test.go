package main

// Checks of the deployment files (deploy/systemd, deploy/kubernetes,
// Dockerfile, .dockerignore) against each other and against the service
// itself: the configuration they ship loads and serves the probe paths they
// name, on the port they expose; the Dockerfile's build command produces a
// static binary; systemd-analyze accepts the unit. docs/operations.md,
// "Deployment", lists what these tests cover and what they cannot.

import (
	"bufio"
	"bytes"
	"context"
	"debug/elf"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"

	"github.com/sextant-telemetry/sextant/config"
	"github.com/sextant-telemetry/sextant/events/bus"
)

const (
	deployRoot    = "../.."
	deployK8sDir  = deployRoot + "/deploy/kubernetes"
	deployUnit    = deployRoot + "/deploy/systemd/sextant.service"
	deploySysuser = deployRoot + "/deploy/systemd/sextant.sysusers.conf"
	deployDocker  = deployRoot + "/Dockerfile"
	deployIgnore  = deployRoot + "/.dockerignore"
	// deployConfigPath is where every deployment puts the configuration.
	deployConfigPath = "/etc/sextant/sextant.yaml"
	// deployStopMargin is the least time a supervisor must grant beyond
	// shutdownTimeout before it kills Sextant.
	deployStopMargin = 5 * time.Second
)

// The Kubernetes objects, as far as the manifests use them. The structs
// mirror the Kubernetes API's field names and are decoded strictly, so a
// misspelt field (readinesProbe) fails here as kubectl's schema validation
// would, which needs a cluster. A manifest that gains a field needs it here.
type (
	k8sMeta struct {
		Name        string            `yaml:"name"`
		Labels      map[string]string `yaml:"labels"`
		Annotations map[string]string `yaml:"annotations"`
	}
	// k8sIntOrString is an IntOrString field: a port number or name.
	k8sIntOrString string
	k8sSelector    struct {
		MatchLabels map[string]string `yaml:"matchLabels"`
	}
	k8sConfigMap struct {
		APIVersion string            `yaml:"apiVersion"`
		Kind       string            `yaml:"kind"`
		Metadata   k8sMeta           `yaml:"metadata"`
		Data       map[string]string `yaml:"data"`
	}
	k8sService struct {
		APIVersion string  `yaml:"apiVersion"`
		Kind       string  `yaml:"kind"`
		Metadata   k8sMeta `yaml:"metadata"`
		Spec       struct {
			Type     string            `yaml:"type"`
			Selector map[string]string `yaml:"selector"`
			Ports    []struct {
				Name       string         `yaml:"name"`
				Port       int            `yaml:"port"`
				TargetPort k8sIntOrString `yaml:"targetPort"`
				Protocol   string         `yaml:"protocol"`
			} `yaml:"ports"`
		} `yaml:"spec"`
	}
	k8sPDB struct {
		APIVersion string  `yaml:"apiVersion"`
		Kind       string  `yaml:"kind"`
		Metadata   k8sMeta `yaml:"metadata"`
		Spec       struct {
			MaxUnavailable *k8sIntOrString `yaml:"maxUnavailable"`
			MinAvailable   *k8sIntOrString `yaml:"minAvailable"`
			Selector       k8sSelector     `yaml:"selector"`
		} `yaml:"spec"`
	}
	k8sProbe struct {
		HTTPGet *struct {
			Path   string         `yaml:"path"`
			Port   k8sIntOrString `yaml:"port"`
			Scheme string         `yaml:"scheme"`
		} `yaml:"httpGet"`
		InitialDelaySeconds int `yaml:"initialDelaySeconds"`
		PeriodSeconds       int `yaml:"periodSeconds"`
		TimeoutSeconds      int `yaml:"timeoutSeconds"`
		FailureThreshold    int `yaml:"failureThreshold"`
		SuccessThreshold    int `yaml:"successThreshold"`
	}
	k8sVolumeMount struct {
		Name      string `yaml:"name"`
		MountPath string `yaml:"mountPath"`
		ReadOnly  bool   `yaml:"readOnly"`
	}
	k8sImage struct {
		Name    string `yaml:"name"`
		NewName string `yaml:"newName"`
		NewTag  string `yaml:"newTag"`
		Digest  string `yaml:"digest"`
	}
	k8sContainer struct {
		Name            string   `yaml:"name"`
		Image           string   `yaml:"image"`
		ImagePullPolicy string   `yaml:"imagePullPolicy"`
		Command         []string `yaml:"command"`
		Args            []string `yaml:"args"`
		Ports           []struct {
			Name          string `yaml:"name"`
			ContainerPort int    `yaml:"containerPort"`
			Protocol      string `yaml:"protocol"`
		} `yaml:"ports"`
		Env []struct {
			Name      string `yaml:"name"`
			Value     string `yaml:"value"`
			ValueFrom *struct {
				SecretKeyRef *struct {
					Name     string `yaml:"name"`
					Key      string `yaml:"key"`
					Optional *bool  `yaml:"optional"`
				} `yaml:"secretKeyRef"`
			} `yaml:"valueFrom"`
		} `yaml:"env"`
		VolumeMounts    []k8sVolumeMount `yaml:"volumeMounts"`
		SecurityContext struct {
			AllowPrivilegeEscalation *bool `yaml:"allowPrivilegeEscalation"`
			ReadOnlyRootFilesystem   *bool `yaml:"readOnlyRootFilesystem"`
			Privileged               *bool `yaml:"privileged"`
			Capabilities             struct {
				Drop []string `yaml:"drop"`
				Add  []string `yaml:"add"`
			} `yaml:"capabilities"`
		} `yaml:"securityContext"`
		Resources struct {
			Requests map[string]string `yaml:"requests"`
			Limits   map[string]string `yaml:"limits"`
		} `yaml:"resources"`
		StartupProbe   *k8sProbe `yaml:"startupProbe"`
		LivenessProbe  *k8sProbe `yaml:"livenessProbe"`
		ReadinessProbe *k8sProbe `yaml:"readinessProbe"`
		Lifecycle      struct {
			PreStop *struct {
				Sleep *struct {
					Seconds int `yaml:"seconds"`
				} `yaml:"sleep"`
			} `yaml:"preStop"`
		} `yaml:"lifecycle"`
	}
	k8sDeployment struct {
		APIVersion string  `yaml:"apiVersion"`
		Kind       string  `yaml:"kind"`
		Metadata   k8sMeta `yaml:"metadata"`
		Spec       struct {
			Replicas             *int        `yaml:"replicas"`
			RevisionHistoryLimit *int        `yaml:"revisionHistoryLimit"`
			Selector             k8sSelector `yaml:"selector"`
			Strategy             struct {
				Type          string `yaml:"type"`
				RollingUpdate struct {
					MaxSurge       k8sIntOrString `yaml:"maxSurge"`
					MaxUnavailable k8sIntOrString `yaml:"maxUnavailable"`
				} `yaml:"rollingUpdate"`
			} `yaml:"strategy"`
			Template struct {
				Metadata k8sMeta `yaml:"metadata"`
				Spec     struct {
					AutomountServiceAccountToken  *bool `yaml:"automountServiceAccountToken"`
					TerminationGracePeriodSeconds *int  `yaml:"terminationGracePeriodSeconds"`
					SecurityContext               struct {
						RunAsNonRoot   *bool  `yaml:"runAsNonRoot"`
						RunAsUser      *int64 `yaml:"runAsUser"`
						RunAsGroup     *int64 `yaml:"runAsGroup"`
						FSGroup        *int64 `yaml:"fsGroup"`
						SeccompProfile struct {
							Type string `yaml:"type"`
						} `yaml:"seccompProfile"`
					} `yaml:"securityContext"`
					Containers []k8sContainer `yaml:"containers"`
					Volumes    []struct {
						Name      string `yaml:"name"`
						ConfigMap *struct {
							Name string `yaml:"name"`
						} `yaml:"configMap"`
						EmptyDir *struct {
							SizeLimit string `yaml:"sizeLimit"`
							Medium    string `yaml:"medium"`
						} `yaml:"emptyDir"`
					} `yaml:"volumes"`
				} `yaml:"spec"`
			} `yaml:"template"`
		} `yaml:"spec"`
	}
	k8sKustomization struct {
		APIVersion         string   `yaml:"apiVersion"`
		Kind               string   `yaml:"kind"`
		Resources          []string `yaml:"resources"`
		ConfigMapGenerator []struct {
			Name    string   `yaml:"name"`
			Files   []string `yaml:"files"`
			Options struct {
				Labels map[string]string `yaml:"labels"`
			} `yaml:"options"`
		} `yaml:"configMapGenerator"`
		Images []k8sImage `yaml:"images"`
	}
)

func (v *k8sIntOrString) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode {
		return fmt.Errorf("line %d: want a number or a name, got a %v", n.Line, n.Kind)
	}
	*v = k8sIntOrString(n.Value)
	return nil
}

// k8sObjects is one set of manifests, decoded.
type k8sObjects struct {
	deployment k8sDeployment
	service    k8sService
	configMap  k8sConfigMap
	pdbs       []k8sPDB
}

// deployStrict decodes one YAML document into out, refusing unknown fields.
func deployStrict(doc []byte, out any) error {
	dec := yaml.NewDecoder(bytes.NewReader(doc))
	dec.KnownFields(true)
	return dec.Decode(out)
}

// deployDocuments splits a multi-document YAML stream into its documents.
func deployDocuments(t *testing.T, name string, data []byte) [][]byte {
	t.Helper()
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var docs [][]byte
	for {
		var n yaml.Node
		err := dec.Decode(&n)
		if errors.Is(err, io.EOF) {
			return docs
		}
		require.NoError(t, err, "%s: not YAML", name)
		out, err := yaml.Marshal(&n)
		require.NoError(t, err)
		docs = append(docs, out)
	}
}

// decodeK8s sorts the documents by kind into a k8sObjects, refusing kinds
// and API versions the manifests have no business using.
func decodeK8s(t *testing.T, name string, docs [][]byte) k8sObjects {
	t.Helper()
	known := map[string]string{ // kind → the API version that serves it
		"ConfigMap":           "v1",
		"Service":             "v1",
		"Deployment":          "apps/v1",
		"PodDisruptionBudget": "policy/v1",
	}
	var objs k8sObjects
	counts := map[string]int{}
	for i, doc := range docs {
		var head struct {
			APIVersion string `yaml:"apiVersion"`
			Kind       string `yaml:"kind"`
		}
		require.NoError(t, yaml.Unmarshal(doc, &head), "%s: document %d", name, i)
		want, ok := known[head.Kind]
		require.True(t, ok, "%s: document %d: unexpected kind %q", name, i, head.Kind)
		require.Equal(t, want, head.APIVersion, "%s: document %d: %s's apiVersion", name, i, head.Kind)
		var err error
		switch head.Kind {
		case "ConfigMap":
			err = deployStrict(doc, &objs.configMap)
		case "Service":
			err = deployStrict(doc, &objs.service)
		case "Deployment":
			err = deployStrict(doc, &objs.deployment)
		case "PodDisruptionBudget":
			var p k8sPDB
			err = deployStrict(doc, &p)
			objs.pdbs = append(objs.pdbs, p)
		}
		require.NoError(t, err, "%s: %s (document %d)", name, head.Kind, i)
		counts[head.Kind]++
	}
	for _, kind := range []string{"ConfigMap", "Service", "Deployment"} {
		require.Equal(t, 1, counts[kind], "%s: want exactly one %s", name, kind)
	}
	return objs
}

func loadKustomization(t *testing.T) k8sKustomization {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(deployK8sDir, "kustomization.yaml"))
	require.NoError(t, err)
	var k k8sKustomization
	require.NoError(t, deployStrict(data, &k), "kustomization.yaml")
	require.Equal(t, "kustomize.config.k8s.io/v1beta1", k.APIVersion)
	require.Equal(t, "Kustomization", k.Kind)
	return k
}

// k8sFromSources reads the manifests kustomization.yaml lists, and makes
// the ConfigMap its generator describes (without kustomize's hash suffix).
func k8sFromSources(t *testing.T) k8sObjects {
	t.Helper()
	k := loadKustomization(t)
	var docs [][]byte
	for _, r := range k.Resources {
		data, err := os.ReadFile(filepath.Join(deployK8sDir, r))
		require.NoError(t, err, "kustomization.yaml resources")
		docs = append(docs, deployDocuments(t, r, data)...)
	}
	for _, g := range k.ConfigMapGenerator {
		cm := k8sConfigMap{APIVersion: "v1", Kind: "ConfigMap", Metadata: k8sMeta{Name: g.Name, Labels: g.Options.Labels}, Data: map[string]string{}}
		for _, f := range g.Files {
			data, err := os.ReadFile(filepath.Join(deployK8sDir, f))
			require.NoError(t, err, "kustomization.yaml configMapGenerator %s", g.Name)
			cm.Data[filepath.Base(f)] = string(data)
		}
		out, err := yaml.Marshal(cm)
		require.NoError(t, err)
		docs = append(docs, out)
	}
	return decodeK8s(t, "deploy/kubernetes", docs)
}

// k8sRendered is what "kubectl kustomize" makes of deploy/kubernetes: what
// "kubectl apply -k" would send. It renders offline; applying with
// --dry-run=client is not used because kubectl needs an API server even then.
func k8sRendered(t *testing.T) k8sObjects {
	t.Helper()
	kubectl, err := exec.LookPath("kubectl")
	if err != nil {
		t.Skip("kubectl is not installed: the rendered manifests are not checked (the source files are)")
	}
	var stderr bytes.Buffer
	cmd := exec.Command(kubectl, "kustomize", deployK8sDir)
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	require.NoError(t, err, "kubectl kustomize %s: %s", deployK8sDir, stderr.String())
	return decodeK8s(t, "kubectl kustomize", deployDocuments(t, "kubectl kustomize", out))
}

// sextantContainer is the Deployment's one container.
func (o k8sObjects) sextantContainer(t *testing.T) k8sContainer {
	t.Helper()
	cs := o.deployment.Spec.Template.Spec.Containers
	require.Len(t, cs, 1, "the Deployment runs one container")
	require.Equal(t, "sextant", cs[0].Name)
	return cs[0]
}

// containerPort resolves a probe's or Service's port, a number or a name,
// to one of the container's ports.
func (c k8sContainer) containerPort(t *testing.T, p k8sIntOrString) int {
	t.Helper()
	for _, cp := range c.Ports {
		if cp.Name == string(p) || strconv.Itoa(cp.ContainerPort) == string(p) {
			return cp.ContainerPort
		}
	}
	t.Fatalf("port %q is not among the container's ports %+v", p, c.Ports)
	return 0
}

// configArg is the value of --config in args.
func configArg(t *testing.T, args []string) string {
	t.Helper()
	for i, a := range args {
		if v, ok := strings.CutPrefix(a, "--config="); ok {
			return v
		}
		if a == "--config" && i+1 < len(args) {
			return args[i+1]
		}
	}
	t.Fatalf("no --config in %q", args)
	return ""
}

// mountedConfig is the configuration file the container reads: the
// ConfigMap key mounted at its --config path.
func (o k8sObjects) mountedConfig(t *testing.T) (path, yamlText string) {
	t.Helper()
	c := o.sextantContainer(t)
	path = configArg(t, c.Args)
	dir, key := filepath.Dir(path), filepath.Base(path)
	var volume string
	for _, m := range c.VolumeMounts {
		if m.MountPath == dir {
			require.True(t, m.ReadOnly, "the configuration mount %s is read-only", dir)
			volume = m.Name
		}
	}
	require.NotEmpty(t, volume, "--config %s: no volume is mounted at %s", path, dir)
	for _, v := range o.deployment.Spec.Template.Spec.Volumes {
		if v.Name == volume {
			require.NotNil(t, v.ConfigMap, "volume %s mounted at %s is not a ConfigMap", volume, dir)
			require.Equal(t, o.configMap.Metadata.Name, v.ConfigMap.Name, "volume %s names the ConfigMap", volume)
			text, ok := o.configMap.Data[key]
			require.True(t, ok, "ConfigMap %s has no key %s (--config %s)", o.configMap.Metadata.Name, key, path)
			return path, text
		}
	}
	t.Fatalf("volume %q mounted at %s is not declared", volume, dir)
	return "", ""
}

// loadDeployConfig writes text to a temporary file and loads it as sextant
// run would.
func loadDeployConfig(t *testing.T, text string) (*config.Config, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "sextant.yaml")
	require.NoError(t, os.WriteFile(path, []byte(text), 0o600))
	cfg, err := config.Load(path, factories()...)
	require.NoError(t, err, "the deployed configuration must load")
	return cfg, path
}

// listenPort is the port of server.listen, which must be reachable from
// outside the container: all interfaces.
func listenPort(t *testing.T, cfg *config.Config) int {
	t.Helper()
	host, port, err := net.SplitHostPort(cfg.Server.Listen)
	require.NoError(t, err)
	require.Contains(t, []string{"", "0.0.0.0", "::"}, host,
		"server.listen %s: probes, the Service and Prometheus cannot reach a container's loopback", cfg.Server.Listen)
	n, err := strconv.Atoi(port)
	require.NoError(t, err)
	return n
}

// quantity parses the Kubernetes quantities the manifests use.
func quantity(t *testing.T, s string) float64 {
	t.Helper()
	suffixes := []struct {
		s string
		f float64
	}{{"Ki", 1 << 10}, {"Mi", 1 << 20}, {"Gi", 1 << 30}, {"m", 1e-3}, {"k", 1e3}, {"M", 1e6}, {"G", 1e9}, {"", 1}}
	for _, sf := range suffixes {
		if num, ok := strings.CutSuffix(s, sf.s); ok {
			v, err := strconv.ParseFloat(num, 64)
			require.NoError(t, err, "quantity %q", s)
			return v * sf.f
		}
	}
	return 0 // unreachable: "" matches every string
}

// TestDeployKubernetes checks the manifests as files and as kustomize
// renders them: kinds and API versions, strict field names, the security
// and probe settings, and that the ports, the configuration path and the
// labels agree with each other and with the configuration they mount.
func TestDeployKubernetes(t *testing.T) {
	t.Parallel()
	k := loadKustomization(t)
	t.Run("every manifest is listed", func(t *testing.T) {
		listed := map[string]bool{"kustomization.yaml": true}
		for _, r := range k.Resources {
			listed[r] = true
		}
		for _, g := range k.ConfigMapGenerator {
			for _, f := range g.Files {
				listed[f] = true
			}
		}
		files, err := filepath.Glob(filepath.Join(deployK8sDir, "*.y*ml"))
		require.NoError(t, err)
		require.NotEmpty(t, files)
		for _, f := range files {
			require.True(t, listed[filepath.Base(f)], "%s is not in kustomization.yaml: kubectl apply -k would skip it", f)
		}
	})
	for _, tc := range []struct {
		name string
		load func(*testing.T) k8sObjects
	}{
		{"source files", k8sFromSources},
		{"kubectl kustomize", k8sRendered},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			checkK8s(t, tc.load(t), k)
		})
	}
}

func checkK8s(t *testing.T, o k8sObjects, k k8sKustomization) {
	d, svc := o.deployment, o.service
	pod := d.Spec.Template.Spec
	c := o.sextantContainer(t)

	// The configuration the pod reads loads, and listens on the port the
	// container, the Service and the scrape annotation name.
	path, text := o.mountedConfig(t)
	require.Equal(t, deployConfigPath, path)
	cfg, _ := loadDeployConfig(t, text)
	port := listenPort(t, cfg)
	require.Len(t, c.Ports, 1)
	require.Equal(t, port, c.Ports[0].ContainerPort, "containerPort = server.listen's port")
	require.Len(t, svc.Spec.Ports, 1)
	require.Equal(t, "http-metrics", svc.Spec.Ports[0].Name)
	require.Equal(t, port, svc.Spec.Ports[0].Port)
	require.Equal(t, port, c.containerPort(t, svc.Spec.Ports[0].TargetPort), "the Service's targetPort")
	ann := d.Spec.Template.Metadata.Annotations
	require.Equal(t, "true", ann["prometheus.io/scrape"])
	require.Equal(t, strconv.Itoa(port), ann["prometheus.io/port"])
	require.Equal(t, "/metrics", ann["prometheus.io/path"])

	// The image's ENTRYPOINT runs; args are sextant's.
	require.Empty(t, c.Command, "command would replace the image's ENTRYPOINT")
	require.Equal(t, "run", c.Args[0])
	img := strings.SplitN(c.Image, ":", 2)[0]
	require.True(t, slices.ContainsFunc(k.Images, func(i k8sImage) bool { return i.Name == img }), "kustomization.yaml's images has no entry for %s: kustomize edit set image would not apply", img)

	// Labels: the selectors all pick the pod template.
	podLabels := d.Spec.Template.Metadata.Labels
	require.NotEmpty(t, d.Spec.Selector.MatchLabels)
	selectors := map[string]map[string]string{"Deployment": d.Spec.Selector.MatchLabels, "Service": svc.Spec.Selector}
	for _, p := range o.pdbs {
		selectors["PodDisruptionBudget "+p.Metadata.Name] = p.Spec.Selector.MatchLabels
		require.True(t, p.Spec.MaxUnavailable != nil || p.Spec.MinAvailable != nil)
		if p.Spec.MinAvailable != nil {
			require.NotEqual(t, "1", string(*p.Spec.MinAvailable), "minAvailable: 1 blocks every drain of a single replica")
		}
	}
	for who, sel := range selectors {
		require.NotEmpty(t, sel, "%s selects nothing", who)
		for key, v := range sel {
			require.Equal(t, v, podLabels[key], "%s's selector %s=%s does not match the pod template", who, key, v)
		}
	}

	// Replicas and shutdown.
	require.NotNil(t, d.Spec.Replicas)
	require.Equal(t, 1, *d.Spec.Replicas, "one replica on the in-memory bus")
	require.NotNil(t, pod.TerminationGracePeriodSeconds)
	preStop := 0
	if ps := c.Lifecycle.PreStop; ps != nil && ps.Sleep != nil {
		preStop = ps.Sleep.Seconds
	}
	grace := time.Duration(*pod.TerminationGracePeriodSeconds) * time.Second
	require.GreaterOrEqual(t, grace, time.Duration(preStop)*time.Second+shutdownTimeout+deployStopMargin,
		"terminationGracePeriodSeconds must cover the preStop sleep, the %v shutdown and a margin", shutdownTimeout)

	// Security.
	sc := pod.SecurityContext
	require.NotNil(t, pod.AutomountServiceAccountToken)
	require.False(t, *pod.AutomountServiceAccountToken)
	require.NotNil(t, sc.RunAsNonRoot)
	require.True(t, *sc.RunAsNonRoot)
	require.NotNil(t, sc.RunAsUser)
	require.NotZero(t, *sc.RunAsUser)
	require.Equal(t, dockerUser(t), *sc.RunAsUser, "runAsUser = the image's USER")
	require.Equal(t, "RuntimeDefault", sc.SeccompProfile.Type)
	csc := c.SecurityContext
	for name, v := range map[string]*bool{"allowPrivilegeEscalation": csc.AllowPrivilegeEscalation, "privileged": csc.Privileged} {
		require.NotNil(t, v, name)
		require.False(t, *v, name)
	}
	require.NotNil(t, csc.ReadOnlyRootFilesystem)
	require.True(t, *csc.ReadOnlyRootFilesystem)
	require.Equal(t, []string{"ALL"}, csc.Capabilities.Drop)
	require.Empty(t, csc.Capabilities.Add)
	// With a read-only root, plugins' sockets need a writable /tmp.
	require.True(t, slices.ContainsFunc(c.VolumeMounts, func(m k8sVolumeMount) bool { return m.MountPath == "/tmp" && !m.ReadOnly }), "no writable /tmp: plugins could not create their sockets")

	// Resources: requests at most the limits.
	for _, r := range []string{"cpu", "memory"} {
		req, lim := c.Resources.Requests[r], c.Resources.Limits[r]
		require.NotEmpty(t, req, "resources.requests.%s", r)
		require.NotEmpty(t, lim, "resources.limits.%s", r)
		require.LessOrEqual(t, quantity(t, req), quantity(t, lim), "%s request above its limit", r)
	}

	// Probes: HTTP GETs of the service's health routes on its port (the
	// routes answer 200 on a running instance: TestDeployServesProbes).
	for _, tc := range []struct {
		name  string
		probe *k8sProbe
		path  string
	}{
		{"startupProbe", c.StartupProbe, "/health/live"},
		{"livenessProbe", c.LivenessProbe, "/health/live"},
		{"readinessProbe", c.ReadinessProbe, "/health/ready"},
	} {
		require.NotNil(t, tc.probe, tc.name)
		require.NotNil(t, tc.probe.HTTPGet, "%s: httpGet", tc.name)
		require.Equal(t, tc.path, tc.probe.HTTPGet.Path, tc.name)
		require.Equal(t, port, c.containerPort(t, tc.probe.HTTPGet.Port), "%s's port", tc.name)
	}
	// The startup probe must allow longer than a plugin launch.
	sp := c.StartupProbe
	require.Greater(t, time.Duration(sp.PeriodSeconds*sp.FailureThreshold)*time.Second, cfg.Plugins.StartTimeout,
		"startupProbe gives up before plugins.start_timeout")

	// SEXTANT_DATABASE_URL comes from an optional Secret, never a literal.
	var found bool
	for _, e := range c.Env {
		if e.Name != bus.EnvDatabaseURL {
			continue
		}
		found = true
		require.Empty(t, e.Value, "%s must not be a literal in the manifest", e.Name)
		require.NotNil(t, e.ValueFrom)
		require.NotNil(t, e.ValueFrom.SecretKeyRef)
		require.NotNil(t, e.ValueFrom.SecretKeyRef.Optional)
		require.True(t, *e.ValueFrom.SecretKeyRef.Optional, "the in-memory bus needs no Secret")
	}
	require.True(t, found, "%s is not set from a Secret", bus.EnvDatabaseURL)
}

// uncommentBlock returns text with the commented YAML block that starts at
// the line header (e.g. "# bus:") uncommented: the header and the following
// lines that continue it at a deeper indentation.
func uncommentBlock(t *testing.T, text, header string) string {
	t.Helper()
	lines := strings.Split(text, "\n")
	indent := header[:len(header)-len(strings.TrimLeft(header, " "))]
	start := slices.Index(lines, header)
	require.GreaterOrEqual(t, start, 0, "no line %q", header)
	lines[start] = indent + strings.TrimPrefix(strings.TrimPrefix(header, indent), "# ")
	for i := start + 1; i < len(lines) && strings.HasPrefix(lines[i], indent+"#   "); i++ {
		lines[i] = indent + strings.TrimPrefix(lines[i], indent+"# ")
	}
	return strings.Join(lines, "\n")
}

// TestDeployConfigCommentedAlternatives: the commented blocks of
// deploy/kubernetes/sextant.yaml that the docs tell operators to uncomment
// load, and agree with the deployment's comments.
func TestDeployConfigCommentedAlternatives(t *testing.T) {
	data, err := os.ReadFile(filepath.Join(deployK8sDir, "sextant.yaml"))
	require.NoError(t, err)
	deployment, err := os.ReadFile(filepath.Join(deployK8sDir, "deployment.yaml"))
	require.NoError(t, err)
	for _, tc := range []struct {
		name   string
		header string
		check  func(t *testing.T, cfg *config.Config)
	}{
		{"PostgreSQL bus", "# bus:", func(t *testing.T, cfg *config.Config) {
			require.Equal(t, bus.DriverPostgres, cfg.Bus.Driver)
			require.Greater(t, cfg.Bus.Partitions, 1, "one partition cannot be shared by replicas")
			require.GreaterOrEqual(t, cfg.Bus.Postgres.MaxConns, cfg.Bus.Partitions+2, "docs/configuration.md: allow partitions + 2")
		}},
		{"bearer-token auth", "  # auth:", func(t *testing.T, cfg *config.Config) {
			env := cfg.Server.Auth.BearerTokenEnv
			require.NotEmpty(t, env)
			require.Contains(t, string(deployment), "- name: "+env, "deployment.yaml's comment must show how to set %s", env)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv(bus.EnvDatabaseURL, "postgres://sextant:secret@db.invalid:5432/sextant")
			text := uncommentBlock(t, string(data), tc.header)
			require.NotEqual(t, string(data), text)
			cfg, _ := loadDeployConfig(t, text)
			tc.check(t, cfg)
		})
	}
}

// dockerInstruction is one Dockerfile instruction, continuation lines joined.
type dockerInstruction struct {
	cmd  string // upper case: FROM, RUN, …
	args string
}

func parseDockerfile(t *testing.T) []dockerInstruction {
	t.Helper()
	data, err := os.ReadFile(deployDocker)
	require.NoError(t, err)
	var out []dockerInstruction
	var cur strings.Builder
	for line := range strings.SplitSeq(string(data), "\n") {
		trimmed := strings.TrimSpace(line)
		if strings.HasPrefix(trimmed, "#") || (trimmed == "" && cur.Len() == 0) {
			continue // comments (and parser directives) and blank lines
		}
		if s, ok := strings.CutSuffix(trimmed, `\`); ok {
			cur.WriteString(s + " ")
			continue
		}
		cur.WriteString(trimmed)
		cmd, args, _ := strings.Cut(strings.TrimSpace(cur.String()), " ")
		out = append(out, dockerInstruction{strings.ToUpper(cmd), strings.TrimSpace(args)})
		cur.Reset()
	}
	require.Zero(t, cur.Len(), "Dockerfile ends in a continuation line")
	return out
}

// dockerUser is the final stage's numeric USER.
func dockerUser(t *testing.T) int64 {
	t.Helper()
	var user string
	for _, in := range parseDockerfile(t) {
		switch in.cmd {
		case "FROM":
			user = ""
		case "USER":
			user = in.args
		}
	}
	uid, _, _ := strings.Cut(user, ":")
	n, err := strconv.ParseInt(uid, 10, 64)
	require.NoError(t, err, "the final stage's USER %q must be numeric, so that runAsNonRoot can check it", user)
	return n
}

// dockerImage is what the Dockerfile says about the image and its build.
type dockerImage struct {
	stages     []string // FROM arguments
	entrypoint []string
	cmd        []string
	expose     []string
	copies     []string // COPY arguments of the final stage
	context    []string // every COPY source taken from the build context
	build      string   // the RUN command that runs go build
	workdir    string   // the build stage's WORKDIR
}

func inspectDockerfile(t *testing.T) dockerImage {
	t.Helper()
	var img dockerImage
	for _, in := range parseDockerfile(t) {
		switch in.cmd {
		case "FROM":
			img.stages = append(img.stages, in.args)
			img.copies = nil
		case "ENTRYPOINT", "CMD":
			var v []string
			require.NoError(t, json.Unmarshal([]byte(in.args), &v),
				"%s must be in exec form (a JSON array), so that sextant is PID 1 and receives SIGTERM: %s", in.cmd, in.args)
			if in.cmd == "CMD" {
				img.cmd = v
			} else {
				img.entrypoint = v
			}
		case "EXPOSE":
			img.expose = append(img.expose, strings.Fields(in.args)...)
		case "COPY":
			img.copies = append(img.copies, in.args)
			if f := strings.Fields(in.args); !strings.HasPrefix(f[0], "--from=") {
				img.context = append(img.context, f[:len(f)-1]...)
			}
		case "WORKDIR":
			img.workdir = in.args
		case "RUN":
			if strings.Contains(in.args, "go build") {
				img.build = in.args
			}
		}
	}
	return img
}

// TestDeployDockerfile: the image runs the deployments' command line on the
// configuration they use, exposes its port, and runs as the Deployment's
// user.
func TestDeployDockerfile(t *testing.T) {
	t.Parallel()
	img := inspectDockerfile(t)
	o := k8sFromSources(t)
	_, text := o.mountedConfig(t)
	cfg, _ := loadDeployConfig(t, text)
	port := listenPort(t, cfg)

	require.GreaterOrEqual(t, len(img.stages), 2, "multi-stage: the toolchain stays out of the image")
	require.Regexp(t, `(?i)^(--platform=\S+ )?golang:\S+ AS build$`, img.stages[0])
	final := img.stages[len(img.stages)-1]
	require.True(t, final == "scratch" || strings.Contains(final, "distroless/static"), "final stage %q must have no libc (static binary)", final)
	require.Equal(t, []string{"/sextant"}, img.entrypoint)
	require.Equal(t, []string{"run", "--config", deployConfigPath}, img.cmd)
	require.Equal(t, o.sextantContainer(t).Args[:3], img.cmd, "the Deployment's args start as the image's CMD")
	require.Equal(t, []string{strconv.Itoa(port)}, img.expose, "EXPOSE = server.listen's port")
	require.NotZero(t, dockerUser(t), "the image must not run as root")

	// The final stage holds the binary at ENTRYPOINT and the container
	// configuration (the ConfigMap's file) at the --config path.
	out := dockerBuildOutput(t, img)
	require.Contains(t, img.copies, "--from=build "+out+" /sextant")
	var cfgSrc string
	for _, c := range img.copies {
		if f := strings.Fields(c); len(f) == 2 && f[1] == deployConfigPath {
			cfgSrc = f[0]
		}
	}
	require.NotEmpty(t, cfgSrc, "the image has no %s", deployConfigPath)
	inImage, err := os.ReadFile(filepath.Join(deployRoot, cfgSrc))
	require.NoError(t, err)
	require.Equal(t, text, string(inImage), "the image's configuration is the ConfigMap's")
}

// dockerBuildOutput is the -o path of the Dockerfile's go build.
func dockerBuildOutput(t *testing.T, img dockerImage) string {
	t.Helper()
	m := regexp.MustCompile(`-o (\S+)`).FindStringSubmatch(img.build)
	require.NotNil(t, m, "the go build has no -o: %s", img.build)
	return m[1]
}

var (
	dockerBinOnce sync.Once
	dockerBinPath string
	dockerBinErr  error
)

// dockerBuiltBinary runs the Dockerfile's go build command on this machine
// (its RUN flags dropped, BuildKit's target platform set to this one) and
// returns the binary.
func dockerBuiltBinary(t *testing.T) string {
	t.Helper()
	img := inspectDockerfile(t)
	require.NotEmpty(t, img.build, "Dockerfile: no RUN instruction runs go build")
	out := dockerBuildOutput(t, img)
	dockerBinOnce.Do(func() {
		dir, err := os.MkdirTemp("", "sextant-docker-bin-")
		if err != nil {
			dockerBinErr = err
			return
		}
		dockerBinPath = filepath.Join(dir, "sextant")
		script := img.build
		for strings.HasPrefix(script, "--") { // RUN flags: --mount=…
			_, script, _ = strings.Cut(script, " ")
			script = strings.TrimSpace(script)
		}
		if !strings.Contains(script, "-o "+out) {
			dockerBinErr = fmt.Errorf("the Dockerfile's build command %q does not write %s", script, out)
			return
		}
		script = strings.Replace(script, "-o "+out, "-o "+dockerBinPath, 1)
		cmd := exec.Command("sh", "-c", script)
		cmd.Dir = deployRoot // the build stage's WORKDIR holds the whole context
		cmd.Env = append(os.Environ(), "TARGETOS="+runtime.GOOS, "TARGETARCH="+runtime.GOARCH)
		if b, err := cmd.CombinedOutput(); err != nil {
			dockerBinErr = fmt.Errorf("the Dockerfile's build command %q: %v\n%s", script, err, b)
		}
	})
	require.NoError(t, dockerBinErr)
	return dockerBinPath
}

// TestDeployDockerBuildIsStatic: the Dockerfile's build command, run here,
// makes a static binary (no ELF interpreter, no shared libraries): the
// distroless static base has no libc to offer. A cgo dependency creeping in
// would fail here before it fails in the image.
func TestDeployDockerBuildIsStatic(t *testing.T) {
	img := inspectDockerfile(t)
	require.Contains(t, img.build, "CGO_ENABLED=0")
	require.Contains(t, img.build, "-trimpath")
	require.Contains(t, img.build, "./cmd/sextant")
	require.Equal(t, "/src", img.workdir)
	require.Contains(t, img.context, ".", "the build stage copies the whole context into its WORKDIR")
	path := dockerBuiltBinary(t)
	f, err := elf.Open(path)
	require.NoError(t, err)
	defer f.Close()
	for _, p := range f.Progs {
		require.NotEqual(t, elf.PT_INTERP, p.Type, "the binary needs a dynamic loader")
	}
	libs, err := f.ImportedLibraries()
	require.NoError(t, err)
	require.Empty(t, libs, "the binary links shared libraries")
	out, err := exec.Command(path, "version").CombinedOutput()
	require.NoError(t, err, "%s", out)
	require.Contains(t, string(out), "sextant "+Version)
}

// dockerIgnored reports whether .dockerignore's patterns keep path (slash
// separated, relative to the context) out of the build context, as
// Docker's matcher does: patterns are anchored at the context's root, "**"
// spans directories, a pattern matching a directory excludes what is
// under it, the last matching pattern wins and "!" re-includes.
func dockerIgnored(patterns []string, path string) bool {
	ignored := false
	for _, p := range patterns {
		negate := strings.HasPrefix(p, "!")
		p = strings.Trim(strings.TrimPrefix(p, "!"), "/")
		var re strings.Builder
		re.WriteString("^")
		for i := 0; i < len(p); i++ {
			switch {
			case strings.HasPrefix(p[i:], "**/"):
				re.WriteString("(.*/)?")
				i += 2
			case strings.HasPrefix(p[i:], "**"):
				re.WriteString(".*")
				i++
			case p[i] == '*':
				re.WriteString("[^/]*")
			case p[i] == '?':
				re.WriteString("[^/]")
			default:
				re.WriteString(regexp.QuoteMeta(p[i : i+1]))
			}
		}
		re.WriteString("(/.*)?$")
		if regexp.MustCompile(re.String()).MatchString(path) {
			ignored = !negate
		}
	}
	return ignored
}

// TestDeployDockerignore: the build context keeps every file the image's
// build reads (the Go sources of the binary's packages, their embedded
// files, go.mod, go.sum, the COPY sources) and leaves out the heavy and
// private ones.
func TestDeployDockerignore(t *testing.T) {
	t.Parallel()
	data, err := os.ReadFile(deployIgnore)
	require.NoError(t, err)
	var patterns []string
	for line := range strings.SplitSeq(string(data), "\n") {
		if line = strings.TrimSpace(line); line != "" && !strings.HasPrefix(line, "#") {
			patterns = append(patterns, line)
		}
	}
	for _, tc := range []struct {
		path, pattern string
		ignored       bool
	}{
		{"bin/sextant", "bin/", true},
		{"bin", "bin/", true},
		{"cmd/sextant/main.go", "/sextant", false},
		{"sextant", "/sextant", true},
		{"a/node_modules/b/c.js", "**/node_modules", true},
		{"node_modules/c.js", "**/node_modules", true},
		{"a/b.test", "*.test", false},
		{"x.test", "*.test", true},
		{"docs/a.md", "docs/\n!docs/a.md", false},
	} {
		require.Equal(t, tc.ignored, dockerIgnored(strings.Split(tc.pattern, "\n"), tc.path), "pattern %q, path %q", tc.pattern, tc.path)
	}

	root, err := filepath.Abs(deployRoot)
	require.NoError(t, err)
	list := exec.Command("go", "list", "-deps", "-f",
		`{{if .Module}}{{if .Module.Main}}{{$d := .Dir}}{{range .GoFiles}}{{$d}}/{{.}}
{{end}}{{range .EmbedFiles}}{{$d}}/{{.}}
{{end}}{{end}}{{end}}`, "./cmd/sextant")
	list.Dir = root
	out, err := list.Output()
	require.NoError(t, err)
	needed := []string{"go.mod", "go.sum"}
	for f := range strings.FieldsSeq(string(out)) {
		rel, err := filepath.Rel(root, f)
		require.NoError(t, err)
		needed = append(needed, filepath.ToSlash(rel))
	}
	require.Contains(t, needed, "config/default.yaml", "go list lists embedded files")
	for _, src := range inspectDockerfile(t).context {
		if src != "." {
			needed = append(needed, src)
		}
	}
	for _, f := range needed {
		require.False(t, dockerIgnored(patterns, f), ".dockerignore leaves %s out of the build context, and the build needs it", f)
	}
	for _, f := range []string{".git/HEAD", "bin/sextant", "plugins/examples/graphite-node/node_modules/x/index.js", "cmd/sextant/sextant.test"} {
		require.True(t, dockerIgnored(patterns, f), ".dockerignore sends %s to the builder", f)
	}
}

// TestDeployServesProbes runs the service in-process on the deployed
// configuration, once with the Deployment's args and once with the image's
// CMD (--config pointed at a copy, --listen at a free port), and GETs the
// probe and scrape paths the manifests name: each must answer 200, and a
// path the service does not serve must not.
func TestDeployServesProbes(t *testing.T) {
	o := k8sFromSources(t)
	c := o.sextantContainer(t)
	_, text := o.mountedConfig(t)
	_, cfgPath := loadDeployConfig(t, text)
	img := inspectDockerfile(t)
	paths := []string{
		c.StartupProbe.HTTPGet.Path,
		c.LivenessProbe.HTTPGet.Path,
		c.ReadinessProbe.HTTPGet.Path,
		o.deployment.Spec.Template.Metadata.Annotations["prometheus.io/path"],
	}
	for _, tc := range []struct {
		name string
		args []string
	}{
		{"Deployment args", c.Args},
		{"Dockerfile CMD", img.cmd},
	} {
		t.Run(tc.name, func(t *testing.T) {
			args := slices.Clone(tc.args)
			for i := range args {
				if args[i] == deployConfigPath {
					args[i] = cfgPath
				}
			}
			require.Equal(t, cfgPath, configArg(t, args))
			args = append(args, "--listen", "127.0.0.1:0")
			ctx, cancel := context.WithCancel(context.Background())
			stdout, stderr := &lockedBuffer{}, &lockedBuffer{}
			var runErr error
			exited := make(chan struct{})
			go func() { runErr = run(ctx, args, stdout, stderr); close(exited) }()
			t.Cleanup(func() { cancel(); <-exited }) // also when an assertion below fails
			addr := waitServing(t, args, stdout, stderr, exited, &runErr)
			get := func(path string) int {
				resp, err := http.Get("http://" + addr + path)
				require.NoError(t, err)
				_, _ = io.Copy(io.Discard, resp.Body)
				_ = resp.Body.Close()
				return resp.StatusCode
			}
			for _, p := range paths {
				require.Equal(t, http.StatusOK, get(p), "GET %s", p)
			}
			require.NotEqual(t, http.StatusOK, get("/health/no-such-probe"), "the service answers 200 to any path: the check above proves nothing")
			cancel()
			<-exited
			require.NoError(t, runErr, "orderly shutdown; stderr:\n%s", stderr.String())
		})
	}
}

// waitServing waits for run's "serving" line on stdout and returns the
// address; if run ends (exited closed, *runErr set) or does not serve
// within 30 s, the test fails.
func waitServing(t *testing.T, args []string, stdout, stderr *lockedBuffer, exited <-chan struct{}, runErr *error) string {
	t.Helper()
	re := regexp.MustCompile(`serving http://([^/]+)/metrics`)
	deadline := time.After(30 * time.Second)
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		if m := re.FindStringSubmatch(stdout.String()); m != nil {
			return m[1]
		}
		select {
		case <-exited:
			t.Fatalf("sextant %q exited before serving: %v\n%s", args, *runErr, stderr.String())
		case <-deadline:
			t.Fatalf("sextant %q did not serve within 30s\n%s", args, stderr.String())
		case <-tick.C:
		}
	}
}

// systemdUnit is a unit file's settings: section → key → values in order.
type systemdUnit map[string]map[string][]string

func parseSystemdUnit(t *testing.T, path string) systemdUnit {
	t.Helper()
	f, err := os.Open(path)
	require.NoError(t, err)
	defer f.Close()
	u := systemdUnit{}
	section := ""
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		switch {
		case line == "" || strings.HasPrefix(line, "#") || strings.HasPrefix(line, ";"):
		case strings.HasPrefix(line, "[") && strings.HasSuffix(line, "]"):
			section = strings.Trim(line, "[]")
			u[section] = map[string][]string{}
		default:
			require.NotEmpty(t, section, "%s: %q before any section", path, line)
			require.False(t, strings.HasSuffix(line, `\`), "%s: continuation lines are not used here", path)
			k, v, ok := strings.Cut(line, "=")
			require.True(t, ok, "%s: %q is not key=value", path, line)
			u[section][k] = append(u[section][k], v)
		}
	}
	require.NoError(t, sc.Err())
	return u
}

// last is the effective value of a single-valued setting.
func (u systemdUnit) last(section, key string) (string, bool) {
	v := u[section][key]
	if len(v) == 0 {
		return "", false
	}
	return v[len(v)-1], true
}

// verifyUnit runs systemd-analyze verify on unit (a file whose ExecStart
// binary exists) and returns what it printed: nothing for a clean unit;
// systemd-analyze exits 0 on many problems (unknown keys, unparsable
// values) and only says so.
func verifyUnit(t *testing.T, analyze, unit string) (string, error) {
	t.Helper()
	out, err := exec.Command(analyze, "verify", "--man=no", unit).CombinedOutput()
	return strings.TrimSpace(string(out)), err
}

// TestDeploySystemd checks the unit's settings, then has systemd-analyze
// verify it (with ExecStart pointed at the binary the Dockerfile's command
// builds) and score its sandboxing.
func TestDeploySystemd(t *testing.T) {
	analyze, err := exec.LookPath("systemd-analyze")
	require.NoError(t, err, "systemd-analyze (Debian's systemd package) is needed to verify deploy/systemd/sextant.service")
	u := parseSystemdUnit(t, deployUnit)

	t.Run("settings", func(t *testing.T) {
		for _, tc := range []struct {
			key  string
			want string
		}{
			{"Type", "exec"},
			{"ExecStart", "/usr/local/bin/sextant run --config " + deployConfigPath},
			{"User", "sextant"},
			{"Group", "sextant"},
			{"Restart", "on-failure"},
			{"KillMode", "mixed"},
			{"KillSignal", "SIGTERM"},
			{"EnvironmentFile", "-/etc/sextant/sextant.env"},
			{"NoNewPrivileges", "yes"},
			{"ProtectSystem", "strict"},
			{"ProtectHome", "yes"},
			{"PrivateTmp", "yes"},
			{"CapabilityBoundingSet", ""},
			{"AmbientCapabilities", ""},
			{"RestrictAddressFamilies", "AF_UNIX AF_INET AF_INET6"},
			{"StateDirectory", "sextant"},
		} {
			got, ok := u.last("Service", tc.key)
			require.True(t, ok, "[Service] %s is not set", tc.key)
			require.Equal(t, tc.want, got, "[Service] %s", tc.key)
		}
		require.Contains(t, u["Service"]["SystemCallFilter"], "@system-service")
		_, ok := u.last("Service", "MemoryDenyWriteExecute")
		require.False(t, ok, "MemoryDenyWriteExecute breaks Node.js plugins (V8's JIT needs W+X memory)")
		limit, ok := u.last("Service", "LimitNOFILE")
		require.True(t, ok, "LimitNOFILE")
		n, err := strconv.Atoi(limit)
		require.NoError(t, err)
		require.GreaterOrEqual(t, n, 4096)
		stop, ok := u.last("Service", "TimeoutStopSec")
		require.True(t, ok, "TimeoutStopSec")
		d, err := time.ParseDuration(stop)
		require.NoError(t, err, "TimeoutStopSec %q (write it with a unit, e.g. 20s)", stop)
		require.GreaterOrEqual(t, d, shutdownTimeout+deployStopMargin, "TimeoutStopSec must exceed the %v orderly shutdown", shutdownTimeout)
		require.Equal(t, []string{"multi-user.target"}, u["Install"]["WantedBy"])

		sysusers, err := os.ReadFile(deploySysuser)
		require.NoError(t, err)
		require.Regexp(t, `(?m)^u\s+sextant\s`, string(sysusers), "sextant.sysusers.conf creates the unit's User=")
	})

	unit, err := os.ReadFile(deployUnit)
	require.NoError(t, err)
	bin := dockerBuiltBinary(t)
	for _, tc := range []struct {
		name   string
		mutate func(string) string
		clean  bool
	}{
		{"shipped unit", func(s string) string { return s }, true},
		// The harness must see problems systemd-analyze only prints.
		{"misspelt key is reported", func(s string) string { return strings.Replace(s, "KillMode=", "KilMode=", 1) }, false},
		{"bad value is reported", func(s string) string { return strings.Replace(s, "TimeoutStopSec=20s", "TimeoutStopSec=20x", 1) }, false},
		{"missing binary is reported", func(s string) string { return strings.Replace(s, bin, "/nonexistent/sextant", 1) }, false},
	} {
		t.Run("verify/"+tc.name, func(t *testing.T) {
			dir := t.TempDir()
			text := strings.Replace(string(unit), "ExecStart=/usr/local/bin/sextant ", "ExecStart="+bin+" ", 1)
			require.NotEqual(t, string(unit), text, "ExecStart not found")
			mutated := tc.mutate(text)
			require.NotEqual(t, tc.clean, mutated != text, "the mutation must apply")
			path := filepath.Join(dir, "sextant.service")
			require.NoError(t, os.WriteFile(path, []byte(mutated), 0o644))
			out, err := verifyUnit(t, analyze, path)
			if tc.clean {
				require.NoError(t, err, "systemd-analyze verify: %s", out)
				require.Empty(t, out, "systemd-analyze verify complains")
			} else {
				require.True(t, err != nil || out != "", "systemd-analyze verify found nothing wrong with the broken unit")
			}
		})
	}

	t.Run("security", func(t *testing.T) {
		dir := t.TempDir()
		path := filepath.Join(dir, "sextant.service")
		require.NoError(t, os.WriteFile(path, unit, 0o644))
		// --threshold=20: exposure 2.0 of 10 or less, "OK" in
		// systemd-analyze's terms; removing a hardening setting raises it.
		out, err := exec.Command(analyze, "security", "--offline=true", "--threshold=20", "--no-pager", path).CombinedOutput()
		require.NoError(t, err, "systemd-analyze security: exposure above 2.0:\n%s", out)
		m := regexp.MustCompile(`Overall exposure level for sextant.service: (\S+)`).FindSubmatch(out)
		require.NotNil(t, m, "%s", out)
		t.Logf("systemd-analyze security: exposure %s", m[1])
	})
}
