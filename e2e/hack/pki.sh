# PKI and kubeconfigs for the loopback control plane, with openssl. Sourced by cluster.sh.
# All keys are ECDSA P-256 in PKCS#8 (fast to generate; Go and rustls both read them).

# new_key <path>
new_key() {
  openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1" 2>/dev/null
}

# new_ca <dir>: ca.key, ca.crt
new_ca() {
  new_key "$1/ca.key"
  openssl req -x509 -new -key "$1/ca.key" -subj "/CN=ragops-e2e-ca" -days 3650 -out "$1/ca.crt" \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
}

# new_cert <dir> <name> <subject> <extensions (newline separated)>: <name>.key, <name>.crt signed by ca
new_cert() {
  local dir="$1" name="$2" subject="$3" ext="$4"
  new_key "${dir}/${name}.key"
  printf '%s\n' "${ext}" >"${dir}/${name}.ext"
  openssl req -new -key "${dir}/${name}.key" -subj "${subject}" -out "${dir}/${name}.csr" 2>/dev/null
  openssl x509 -req -in "${dir}/${name}.csr" -CA "${dir}/ca.crt" -CAkey "${dir}/ca.key" \
    -set_serial "0x$(openssl rand -hex 16)" -days 365 -extfile "${dir}/${name}.ext" \
    -out "${dir}/${name}.crt" 2>/dev/null
  rm -f "${dir}/${name}.csr" "${dir}/${name}.ext"
}

# new_client_cert <dir> <name> <user> [group]
new_client_cert() {
  local subject="/CN=$3"
  [[ -n "${4:-}" ]] && subject="/O=$4/CN=$3"
  new_cert "$1" "$2" "${subject}" "basicConstraints=critical,CA:FALSE
keyUsage=critical,digitalSignature
extendedKeyUsage=clientAuth"
}

# new_serving_cert <dir> <name>: for 127.0.0.1/localhost and the in-cluster names of the API server
new_serving_cert() {
  new_cert "$1" "$2" "/CN=kube-apiserver" "basicConstraints=critical,CA:FALSE
keyUsage=critical,digitalSignature
extendedKeyUsage=serverAuth
subjectAltName=IP:127.0.0.1,DNS:localhost,IP:10.0.0.1,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc"
}

# write_kubeconfig <out> <server> <ca.crt> <client.crt> <client.key> <user>
# Certificates are embedded so the file works wherever it is copied to.
write_kubeconfig() {
  local out="$1" server="$2" ca="$3" crt="$4" key="$5" user="$6"
  cat >"${out}" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: ragops-e2e
  cluster:
    server: ${server}
    certificate-authority-data: $(base64 -w0 <"${ca}")
users:
- name: ${user}
  user:
    client-certificate-data: $(base64 -w0 <"${crt}")
    client-key-data: $(base64 -w0 <"${key}")
contexts:
- name: ragops-e2e
  context:
    cluster: ragops-e2e
    user: ${user}
    namespace: default
current-context: ragops-e2e
EOF
  chmod 600 "${out}"
}

# name:user — each component its own user (all in group system:masters), so the audit log tells
# them apart; "operator" is the identity tests give to the ragops operator, "operator-b" a second
# replica's (split-brain tests tell the two leaders' writes apart by it).
PKI_CLIENTS=(
  "admin:ragops-e2e-admin"
  "operator:ragops-operator"
  "operator-b:ragops-operator-b"
  "kube-controller-manager:system:kube-controller-manager"
  "kube-scheduler:system:kube-scheduler"
  "kwok:kwok-controller"
)

# generate_pki <pki dir>: CA, API server serving cert, service-account key pair, client certs
generate_pki() {
  local pki="$1"
  mkdir -p "${pki}"
  new_ca "${pki}"
  new_serving_cert "${pki}" apiserver
  # Service-account token signing key pair.
  new_key "${pki}/sa.key"
  openssl pkey -in "${pki}/sa.key" -pubout -out "${pki}/sa.pub" 2>/dev/null
  local entry
  for entry in "${PKI_CLIENTS[@]}"; do
    new_client_cert "${pki}" "${entry%%:*}" "${entry#*:}" system:masters
  done
}

# write_kubeconfigs <pki dir> <server url> <kubeconfig dir>: one kubeconfig per client cert.
# Written again when the API server has to move to another port.
write_kubeconfigs() {
  local pki="$1" server="$2" kc="$3" entry name
  mkdir -p "${kc}"
  for entry in "${PKI_CLIENTS[@]}"; do
    name="${entry%%:*}"
    write_kubeconfig "${kc}/${name}.kubeconfig" "${server}" "${pki}/ca.crt" \
      "${pki}/${name}.crt" "${pki}/${name}.key" "${entry#*:}"
  done
}
