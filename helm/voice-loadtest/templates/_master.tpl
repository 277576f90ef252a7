{{/*
The master's pod spec, shared by its Deployment (mode=interactive) and Job (mode=run).
*/}}
{{- define "voice-loadtest.masterPod" -}}
{{- $run := eq .Values.mode "run" -}}
{{- $upload := and $run .Values.reports.upload.enabled -}}
metadata:
  labels:
    {{- include "voice-loadtest.podLabels" (dict "ctx" . "component" "master" "extra" .Values.master.podLabels) | nindent 4 }}
  annotations:
    {{- include "voice-loadtest.podAnnotations" (dict "ctx" . "port" 9646 "extra" .Values.master.podAnnotations) | nindent 4 }}
spec:
  {{- include "voice-loadtest.podCommon" . | nindent 2 }}
  {{- with include "voice-loadtest.scheduling" (dict "values" .Values.master) | trim }}
  {{- . | nindent 2 }}
  {{- end }}
  {{- if $run }}
  restartPolicy: Never
  {{- end }}
  # Long enough for the master to write its reports after SIGTERM.
  terminationGracePeriodSeconds: 60
  containers:
    - name: master
      image: {{ include "voice-loadtest.image" . | quote }}
      imagePullPolicy: {{ .Values.image.pullPolicy }}
      {{- if $run }}
      # `voice-loadtest reports run` runs the image's entrypoint as a child (signals forwarded)
      # to its end{{ if $upload }}, then uploads /reports{{ end }}; it exits with the master's code.
      command:
        - voice-loadtest
        - reports
        - run
        - --reports
        - /reports
        {{- if $upload }}
        - --upload
        {{- end }}
        - --
        {{- toYaml .Values.image.entrypoint | nindent 8 }}
      {{- end }}
      args:
        - master
        - --slo-file
        - /config/slo.yaml
        {{- if .Values.master.auth.enabled }}
        - --web-login
        {{- end }}
        {{- with .Values.master.extraArgs }}
        {{- toYaml . | nindent 8 }}
        {{- end }}
      env:
        - name: POD_NAME
          valueFrom:
            fieldRef:
              fieldPath: metadata.name
        {{- if $run }}
        - name: LOCUST_HEADLESS
          value: "true"
        - name: LOCUST_RUN_TIME
          value: {{ .Values.load.runTime | quote }}
        - name: LOCUST_EXPECT_WORKERS
          value: {{ include "voice-loadtest.expectWorkers" . | quote }}
        - name: LOCUST_EXPECT_WORKERS_MAX_WAIT
          value: {{ .Values.load.expectWorkersMaxWaitSeconds | int | quote }}
        - name: METRICS_LINGER
          value: {{ .Values.metrics.lingerSeconds | toString | quote }}
        {{- end }}
        - name: LOCUST_USERS
          value: {{ .Values.load.users | int | quote }}
        - name: LOCUST_SPAWN_RATE
          value: {{ .Values.load.spawnRate | toString | quote }}
        - name: LOCUST_STOP_TIMEOUT
          value: {{ .Values.load.stopTimeoutSeconds | int | quote }}
        {{- with .Values.azureMonitor.resourceIds }}
        - name: AZURE_MONITOR_RESOURCE_IDS
          value: {{ join "," . | quote }}
        - name: AZURE_MONITOR_METRICS
          value: {{ join "," $.Values.azureMonitor.metrics | quote }}
        - name: AZURE_MONITOR_INTERVAL_SEC
          value: {{ $.Values.azureMonitor.intervalSeconds | int | quote }}
        {{- end }}
        {{- if $upload }}
        - name: REPORTS_BLOB_ACCOUNT_URL
          value: {{ .Values.reports.upload.accountUrl | quote }}
        - name: REPORTS_BLOB_CONTAINER
          value: {{ .Values.reports.upload.container | quote }}
        - name: REPORTS_BLOB_PREFIX
          value: {{ printf "%s%s/" .Values.reports.upload.prefix (include "voice-loadtest.jobName" .) | quote }}
        {{- end }}
        {{- with .Values.master.auth }}
        {{- if .enabled }}
        - name: WEB_AUTH_USERNAME
          valueFrom:
            secretKeyRef:
              name: {{ .existingSecret }}
              key: {{ .usernameKey }}
        - name: WEB_AUTH_PASSWORD
          valueFrom:
            secretKeyRef:
              name: {{ .existingSecret }}
              key: {{ .passwordKey }}
        {{- end }}
        {{- end }}
        {{- with include "voice-loadtest.scenariosEnv" . | trim }}
        {{- . | nindent 8 }}
        {{- end }}
        {{- with include "voice-loadtest.callerEnv" . | trim }}
        {{- . | nindent 8 }}
        {{- end }}
        {{- with .Values.master.extraEnv }}
        {{- toYaml . | nindent 8 }}
        {{- end }}
      envFrom:
        {{- include "voice-loadtest.callerEnvFrom" . | nindent 8 }}
        {{- if and $upload .Values.reports.upload.existingSecret }}
        - secretRef:
            name: {{ .Values.reports.upload.existingSecret }}
        {{- end }}
        {{- with .Values.master.extraEnvFrom }}
        {{- toYaml . | nindent 8 }}
        {{- end }}
      ports:
        - name: locust
          containerPort: 5557
          protocol: TCP
        - name: web
          containerPort: 8089
          protocol: TCP
        - name: metrics
          containerPort: 9646
          protocol: TCP
      readinessProbe:
        httpGet:
          path: /healthz
          port: metrics
        periodSeconds: 5
        failureThreshold: 3
      livenessProbe:
        httpGet:
          path: /healthz
          port: metrics
        initialDelaySeconds: 10
        periodSeconds: 10
        timeoutSeconds: 5
        failureThreshold: 6
      resources:
        {{- toYaml .Values.master.resources | nindent 8 }}
      securityContext:
        {{- toYaml .Values.securityContext | nindent 8 }}
      volumeMounts:
        - name: tmp
          mountPath: /tmp
        - name: reports
          mountPath: /reports
          {{- if and $run .Values.reports.persistence.enabled }}
          subPathExpr: $(POD_NAME)
          {{- end }}
        - name: files
          mountPath: /config
          readOnly: true
        {{- with include "voice-loadtest.scenariosMount" . | trim }}
        {{- . | nindent 8 }}
        {{- end }}
        {{- with .Values.master.extraVolumeMounts }}
        {{- toYaml . | nindent 8 }}
        {{- end }}
  volumes:
    - name: tmp
      emptyDir: {}
    - name: reports
      {{- if and $run .Values.reports.persistence.enabled }}
      persistentVolumeClaim:
        claimName: {{ include "voice-loadtest.reportsClaimName" . }}
      {{- else }}
      emptyDir: {}
      {{- end }}
    - name: files
      configMap:
        name: {{ include "voice-loadtest.filesName" . }}
    {{- with include "voice-loadtest.scenariosVolume" . | trim }}
    {{- . | nindent 4 }}
    {{- end }}
    {{- with .Values.master.extraVolumes }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
{{- end }}
